"""Train: pick a recipe or a model, set hyperparameters, train in the background, watch it live."""

import streamlit as st

from cnn_core.config import ConfigError, TrainConfig
from cnn_core.hosted import apply_limits, queue_full_message
from cnn_core.presets import LESSONS, preset_config, recipe_of
from ui.jobs import classroom, hosted_limits, job_manager, visitor
from ui.live_run import live_run
from ui.navigation import through_app
from ui.sweep_form import sweep_form
from ui.train_form import TRAIN_BUTTON, share_setup, train_form, train_layout
from ui.viewport import is_phone, reveal

through_app()
st.title("🏋️ Train")
jobs = job_manager()
owner = visitor().tag  # a hash of the hosted visitor's key; None locally


def submit(*configs: TrainConfig, group: str | None = None) -> list[str]:
    """Queue runs, all or none (hosted: within the demo's limits; in a class: within the class's, with the
    student's name on each run; saying what changed); [] when refused. Each records the recipe it is (before
    any clamping); several with a `group` are one sweep."""
    limits, room, me = hosted_limits(), classroom(), visitor()
    busy = queue_full_message(len(jobs.active_runs()), limits, wanted=len(configs))
    meta = {}
    try:
        if room is not None:
            name = room.name_of(me.tag)
            if name is None:
                raise ConfigError("Join the class first (Class page): your runs carry your name.")
            meta = {"name": name, "class": room.id, "step": room.step}
        if busy:
            raise ConfigError(busy)
        limited = [apply_limits(config, limits) for config in configs]
        if room is not None and not me.teacher:  # the class's limits too; the teacher's runs are not limited
            limited = [(fitted, notes + more) for (config, notes) in limited
                       for fitted, more in [room.limits.apply(config)]]
        for config, _ in limited:
            config.validate()  # all before any starts (jobs.submit validates each again, cheaply)
        if group is not None:
            ids = jobs.submit_group([config for config, _ in limited], owner=owner, group=group, **meta)
        else:
            ids = [jobs.submit(config, owner=owner, recipe=recipe_of(original), **meta)
                   for original, (config, _) in zip(configs, limited)]
    except ConfigError as e:  # QueueFull too: this student's turn is taken
        st.error(str(e))
        return []
    for note in dict.fromkeys(note for _, notes in limited for note in notes):
        st.toast(note, icon="ℹ️")
    return ids


phone = is_phone()
form, live = train_layout(phone, run_shown=bool(st.query_params.get("run")))

with form:
    config = train_form()
    if st.button("Train", type="primary", disabled=config is None, icon="▶️", width="stretch", key=TRAIN_BUTTON):
        with live if phone else st.container():  # a phone: what came of it at the top, brought into view
            if phone:
                reveal(key="train_reveal")
            if ids := submit(config):
                st.query_params["run"] = ids[0]
    if config is not None:
        share_setup(config)
    with st.expander("Lessons: recipes side by side"):
        lesson = LESSONS[st.selectbox("Lesson", list(LESSONS), key="lesson")]
        st.markdown(lesson.text)
        if st.button(f"Start {len(lesson.recipes)} runs", key="lesson_start"):
            if ids := submit(*(preset_config(name) for name in lesson.recipes)):
                st.switch_page("pages/runs.py", query_params={"compare": ",".join(ids)})
    with st.expander("Sweep: a grid of runs"):
        if config is not None and (sweep := sweep_form(config)) is not None:
            configs, group = sweep
            if st.button(f"Start {len(configs)} runs", key="sweep_start", disabled=not configs, icon="🧪"):
                if submit(*configs, group=group):
                    st.switch_page("pages/runs.py", query_params={"group": group})

with live:
    run_id = st.query_params.get("run")
    if run_id:
        live_run(jobs, run_id)
    else:
        st.info(f"Choose a recipe or a model {'below' if phone else 'on the left'} and press **Train**. Training runs "
                "in the background: you can leave this page, refresh, or open it in another tab and come back to the "
                "same run.")
