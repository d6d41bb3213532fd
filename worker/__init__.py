"""The training worker: a process of its own that claims jobs and runs ``training``.

It sits above both the curation layer (jobs, corrections, registry) and the ML
(``training``): it claims a job from the queue, builds the job's data, fine-tunes,
scores, writes the new version's folder and registers it. Start it with
``python -m worker`` (``make run`` does, and the app starts one when none is alive).

=================  ===============================================================
module             what
=================  ===============================================================
``loop``           the process: lock, polling, heartbeats, job logs, command line
``training_job``   one training job from its options to a registered version
``job_data``       the base split with the corrections merged in and held out
``progress``       progress every step; cancellation within one step
``devices``        one device, or MirroredStrategy over several GPUs
=================  ===============================================================
"""
