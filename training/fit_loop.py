"""The training loop: ``model.fit``'s callbacks and logs, one ``train_on_batch`` per batch.

On the TensorFlow backend ``model.fit`` feeds a ``PyDataset`` through
``tf.data.Dataset.from_generator``, and on a 2-core CPU its steps were markedly slower than
``train_on_batch`` on the same batches, whose train function is traced for the batch's
own shape (BENCHMARKS.md, training time per epoch). This loop keeps what ``fit`` gives the
callbacks — ``params`` (epochs, steps), the epoch and batch hooks, ``stop_training``, the
epoch's running mean loss in ``logs["loss"]``, the progress bar — and works on every
Keras backend.

Example:
    >>> import keras, numpy as np
    >>> model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    >>> model.compile(optimizer="sgd", loss="mse")
    >>> batches = [(np.ones((4, 2), "float32"), np.zeros((4, 1), "float32"))] * 3
    >>> history = fit_batches(model, batches, epochs=2, verbose=0)
    >>> len(history.history["loss"]), model.optimizer.iterations.numpy().item()
    (2, 6)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import keras


def fit_batches(
    model: keras.Model,
    batches: Sequence[tuple[Any, Any]],
    *,
    epochs: int,
    callbacks: Sequence[keras.callbacks.Callback] = (),
    verbose: int | str = "auto",
) -> keras.callbacks.History:
    """Train ``model`` on ``batches`` (``(inputs, labels)`` pairs) for ``epochs`` epochs.

    Args:
        model: a compiled Keras model.
        batches: indexable batches; a ``keras.utils.PyDataset`` gets its
            ``on_epoch_begin``/``on_epoch_end`` calls (a reshuffle) as under ``fit``.
        epochs: the most epochs; a callback that sets ``model.stop_training`` ends the
            run after the current batch.
        callbacks: as for ``fit``; an exception raised by one ends the run at once.
        verbose: 0 silent, 1 or ``"auto"`` a progress bar.

    Returns:
        The run's ``History`` (the running mean loss of each epoch).
    """
    steps = len(batches)
    progress_bar = verbose not in (0, "0")
    callback_list = keras.callbacks.CallbackList(
        list(callbacks),
        add_history=True,
        add_progbar=progress_bar,
        model=model,
        verbose=1 if progress_bar else 0,
        epochs=epochs,
        steps=steps,
    )
    model.stop_training = False
    callback_list.on_train_begin()
    logs: dict[str, Any] = {}
    for epoch in range(epochs):
        _call(batches, "on_epoch_begin")
        callback_list.on_epoch_begin(epoch)
        total, count = 0.0, 0
        for step in range(steps):
            callback_list.on_train_batch_begin(step)
            inputs, labels = batches[step]
            result = model.train_on_batch(inputs, labels, return_dict=True)
            total, count = total + float(result["loss"]), count + 1
            logs = {**result, "loss": total / count}
            callback_list.on_train_batch_end(step, logs)
            if model.stop_training:
                break
        _call(batches, "on_epoch_end")
        callback_list.on_epoch_end(epoch, logs)
        if model.stop_training:
            break
    callback_list.on_train_end(logs)
    history = model.history
    assert isinstance(history, keras.callbacks.History)
    return history


def _call(batches: object, hook: str) -> None:
    method = getattr(batches, hook, None)
    if callable(method):
        method()
