"""The frame around every page: page config, style sheet, sidebar and navigation.

``streamlit_app.py`` calls :func:`main`; each page module is a script that
``st.navigation`` runs (``app/page_*.py``), listed once in :data:`PAGES`.

Example (the whole entry point)::

    from app.shell import main
    main()
"""

from __future__ import annotations

from dataclasses import dataclass

import streamlit as st

from app import render, services, state
from app.settings import AppSettings, SettingsError
from curation.database import DatabaseError, damaged_error
from curation.jobs import JobNotFoundError

FLASH_RENDERERS = {"success": st.success, "info": st.info, "warning": st.warning, "error": st.error}


@dataclass(frozen=True)
class PageSpec:
    path: str  # relative to streamlit_app.py
    title: str
    icon: str
    url_path: str


PAGES = (
    PageSpec("app/page_tag.py", "Tag text", ":material/highlight:", "tag"),
    PageSpec("app/page_inspect.py", "Inspect a BIO file", ":material/fact_check:", "inspect"),
    PageSpec("app/page_collections.py", "Collections", ":material/library_books:", "collections"),
    PageSpec("app/page_review.py", "Review", ":material/rate_review:", "review"),
    PageSpec("app/page_correct.py", "Correct", ":material/edit_note:", "correct"),
    PageSpec("app/page_corrections.py", "Corrections", ":material/table_view:", "corrections"),
    PageSpec("app/page_training.py", "Training", ":material/model_training:", "training"),
)
CORRECT_PAGE = "app/page_correct.py"
TRAINING_PAGE = "app/page_training.py"


def settings_or_stop() -> AppSettings:
    """The settings, or an error on the page (and nothing else) when one is unusable."""
    try:
        return AppSettings.from_env()
    except SettingsError as error:
        st.error(f"The app's settings are invalid: {error}")
        st.stop()
        raise  # st.stop() raises; this line only satisfies type checkers


def show_flashes() -> None:
    for kind, message in state.take_flashes():
        FLASH_RENDERERS.get(kind, st.info)(message)


def sidebar(settings: AppSettings) -> None:
    with st.sidebar:
        st.text_input(
            "Annotator",
            key=state.ANNOTATOR,
            placeholder="Your name",
            help="Saved with every correction you make.",
        )
        status = services.serving_model(settings)
        if status.tagger is None:
            st.warning("No model available.", icon=":material/warning:")
        else:
            st.caption(
                f"Model **{render.md(status.tagger.version)}** · {render.md(status.tagger.device)}"
            )
            preliminary = preliminary_note(settings, status)
            if preliminary:
                st.caption(f":material/hourglass_top: {render.md(preliminary)}")
            # An automatic fallback is allowed only where it is shown.
            note = getattr(status.tagger, "serving_note", None)
            if note:
                st.caption(f":material/warning: {render.md(note)}")
        if status.warning:  # e.g. the version in service is damaged: the previous one serves
            st.warning(render.md(status.warning), icon=":material/warning:")
        corrections_caption(settings)
        training_caption(settings)


def preliminary_note(settings: AppSettings, status: services.ModelStatus) -> str | None:
    """ "preliminary (epoch 1, devel F1 70.1) — training continues" for an early version."""
    registered = status.registered
    if registered is None or not registered.preliminary:
        return None
    job = None
    if registered.job_id is not None:
        try:
            job = services.curation(settings).queue.get(registered.job_id)
        except (DatabaseError, JobNotFoundError):  # the Training page explains these
            job = None
    return registered.preliminary_note(training_continues=job is not None and job.is_active)


def corrections_caption(settings: AppSettings) -> None:
    """How many corrections are saved, or that the store is unavailable and what to do."""
    try:
        store = services.corrections_store(settings)
        if store.database.damaged is not None:  # readable in places, refuses every write
            raise damaged_error(store.database.message_path, store.database.damaged)
        count = store.count()
    except DatabaseError as error:  # tagging goes on; the pages that need the store say why
        st.warning(
            f"The corrections store is unavailable: {render.md(str(error))}",
            icon=":material/database:",
        )
        return
    st.caption(f"{render.plural(count, 'correction')} saved")


def database_problem(error: DatabaseError) -> None:
    """The one message of a page that cannot work without the database."""
    st.error(render.md(str(error)), icon=":material/error:")


def training_caption(settings: AppSettings) -> None:
    """One line on the job in progress, if any, on every page."""
    try:
        job = services.curation(settings).queue.active_job()
    except Exception:  # the Training page explains a database problem
        return
    if job is None:
        return
    progress = job.progress
    done = f" · {progress.fraction:.0%}" if job.status == "running" and progress.total_steps else ""
    st.caption(f"Training: job {job.id} {job.status}{done}")


def main() -> None:
    st.set_page_config(page_title="Disease tagger", page_icon=":material/biotech:", layout="wide")
    settings = settings_or_stop()
    services.supervise_training(settings)
    css = render.style_sheet()
    if css:
        st.html(css)
    sidebar(settings)
    pages = [
        st.Page(spec.path, title=spec.title, icon=spec.icon, url_path=spec.url_path)
        for spec in PAGES
    ]
    st.navigation(pages).run()
