"""Class: the teacher starts a class and shows its link and QR code; students join with a display name."""

import streamlit as st

from cnn_core.access import owner_tag
from cnn_core.classroom import ClassLimits, lesson_steps, random_name
from cnn_core.config import ConfigError
from cnn_core.models import MODELS
from cnn_core.presets import PRESETS
from ui.classroom import class_link, class_store, is_teacher, qr_png
from ui.jobs import classroom, job_manager, visitor_key
from ui.navigation import through_app


def limits_form(current: ClassLimits, key: str) -> ClassLimits | None:
    """The class limits as the teacher sets them; None after showing what is wrong."""
    c1, c2, c3 = st.columns(3)
    epochs = c1.number_input("Max epochs", 1, 50, current.max_epochs, key=f"{key}_epochs")
    parameters = c2.number_input("Max parameters", 1000, 10_000_000, current.max_parameters, step=10_000,
                                 key=f"{key}_params")
    at_once = c3.number_input("Runs training at once", 1, 16, current.runs_at_once, key=f"{key}_at_once",
                              help="For the whole class; each student has one training and one waiting at most.")
    models = st.multiselect("Models students may train (none chosen: all)", [m for m in MODELS],
                            default=list(current.models), key=f"{key}_models")
    try:
        return ClassLimits(int(epochs), tuple(models), int(parameters), int(at_once), current.running_per_student,
                           current.waiting_per_student).check()
    except ConfigError as e:
        st.error(str(e))
        return None


def set_up_form(config, lesson: str | None) -> None:
    """Put a step's config into the Train page's form (its widgets read these keys when they are drawn)."""
    import dataclasses

    from cnn_core.config import TrainConfig
    from cnn_core.presets import DEFAULT_PRESET

    st.session_state["preset"] = lesson if lesson in PRESETS else DEFAULT_PRESET  # the form keeps what follows
    for f in dataclasses.fields(TrainConfig):
        st.session_state[f"cfg_{f.name}"] = getattr(config, f.name)
    if config.model == "custom":
        st.session_state["layers"] = [dict(layer) for layer in config.model_args.get("layers", [])]


def teacher_view(room) -> None:
    link = class_link()
    st.subheader(f"Class `{room.id}` is open")
    left, right = st.columns([2, 1])
    left.markdown(f"Students open **<span style='font-size:1.6em'>{link}</span>** or scan the code.",
                  unsafe_allow_html=True)
    right.image(qr_png(link), caption=link, width=260)
    names = sorted(room.students.values(), key=str.casefold)
    left.markdown(f"**{len(names)} student{'s' * (len(names) != 1)} joined**" + (": " + ", ".join(names) if names else ""))
    steps = lesson_steps(room.lesson)
    labels = [f"{i + 1}. {s.title}" for i, s in enumerate(steps)]

    def moved() -> None:  # only a change by this teacher writes (another tab's stale radio never does)
        class_store().set_step(labels.index(st.session_state["class_step"]))

    st.session_state["class_step"] = labels[room.step]  # the class's step, whoever set it
    st.radio(f"Lesson steps{f' — {room.lesson}' if room.lesson else ''}: the class is at", labels,
             key="class_step", on_change=moved)
    st.caption(f"Students see: *{steps[room.step].try_this}*")
    with st.expander("Class limits", expanded=False):
        limits = limits_form(room.limits, "live")
        if limits is not None and st.button("Apply the limits", key="apply_limits"):
            class_store().update(limits=limits)
            st.toast("The class limits apply to the next runs.", icon="✅")
    st.divider()
    st.markdown("**End the class**: its runs are archived (a zip of configs, metrics and checkpoints) and the "
                "board is cleared; a new class can start.")
    if st.button("End the class", icon="🏁", key="end_class"):
        jobs = job_manager()
        runs = [run.folder.path for run in jobs.store.list() if run.meta.get("class") == room.id]
        for run in runs:
            jobs.cancel(run.name)
        archive = class_store().end(runs)
        st.session_state["class_archive"] = str(archive)
        st.rerun()


def start_view() -> None:
    st.subheader("Start a class")
    st.caption("Students will join with a display name (no accounts); their runs are theirs, the class board "
               "shows everyone's, and runs take fair turns.")
    lesson = st.selectbox("Lesson (the recipe students start from)", ["(none)", *PRESETS], key="class_lesson")
    limits = limits_form(ClassLimits(), "new")
    if limits is not None and st.button("Start the class", type="primary", icon="🧑‍🏫", key="start_class"):
        class_store().start(owner_tag(visitor_key()), None if lesson == "(none)" else lesson, limits)
        st.rerun()


def student_view(room) -> None:
    me = owner_tag(visitor_key())
    name = room.name_of(me)
    if name:
        st.success(f"You are **{name}** in this class. Your runs show your name on the class board.")
        if room.lesson:
            st.markdown(f"Today's lesson: **{room.lesson}**")
        steps = lesson_steps(room.lesson)
        step = steps[min(room.step, len(steps) - 1)]
        st.subheader(f"Step {room.step + 1} of {len(steps)}: {step.title}")
        st.markdown(f"👉 {step.try_this}")
        if st.button("Set up this step on the Train page", type="primary", icon="🏋️", key="setup_step"):
            set_up_form(step.config(room.lesson), room.lesson)
            st.switch_page("pages/train.py")
        st.page_link("pages/board.py", label="See the class board", icon="🏆")
        return
    st.subheader("Join the class")
    suggested = st.session_state.setdefault("class_suggested_name", random_name())
    typed = st.text_input("Your name for the class", suggested, max_chars=24, key="class_name",
                          help="Shown on your runs and on the class board. No account, no email.")
    if st.button("Join", type="primary", icon="🙋", key="join_class"):
        try:
            class_store().join(me, typed)
        except ConfigError as e:
            st.error(str(e))
            return
        st.rerun()


through_app()
st.title("🧑‍🏫 Class")
room = classroom()
if archive := st.session_state.pop("class_archive", None):
    from pathlib import Path

    st.success("The class ended. Its runs are archived:")
    st.download_button("Download the class archive", Path(archive).read_bytes(), file_name=Path(archive).name,
                       icon="💾", key="download_archive")
teacher = is_teacher()
if teacher and room is not None and room.teacher != owner_tag(visitor_key()):
    room = class_store().update(teacher=owner_tag(visitor_key()))  # the teacher link opened in a new browser
if room is None:
    if teacher:
        start_view()
    else:
        st.info("No class is running. Teachers: open the teacher link printed in the terminal where the app "
                "started (`…/class?teacher=…`). On your own, nothing here is needed: every page works as is.")
elif teacher:
    teacher_view(room)
else:
    student_view(room)
