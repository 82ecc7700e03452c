"""A class: the teacher's secret, who joined under which name, the class limits, and the end of a class.

    teacher_token(root)            $CNN_TEACHER_TOKEN, else a secret made once in <runs>/.class/teacher-token
    ClassStore(root).start(...)    a new class (the teacher's visitor tag, a lesson, limits)
    ClassStore(root).join(tag, n)  a student's display name (no accounts: the visitor's cookie is the student)
    ClassStore(root).end()         the class's runs archived to a zip, the class closed

The class lives in <runs>/.class/class.json, written atomically, so every session and process of the app sees
the same class. Whoever opens the teacher link (it carries the token) becomes the class's teacher: the token is
compared in constant time, and nothing else a student can send (a query parameter, a widget value) does it.
"""

from __future__ import annotations

import dataclasses
import hmac
import json
import os
import re
import secrets
import shutil
import time
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cnn_core.config import ConfigError, TrainConfig
from cnn_core.runs.layout import write_atomic

FOLDER = ".class"
ADJECTIVES = ("blue", "red", "green", "amber", "silver", "quick", "calm", "brave", "bright", "clever", "gentle",
              "happy", "jolly", "lucky", "merry", "proud", "quiet", "sunny", "swift", "wise")
ANIMALS = ("otter", "fox", "owl", "lynx", "panda", "koala", "heron", "badger", "falcon", "gecko", "llama",
           "marten", "puffin", "quokka", "raven", "seal", "tapir", "walrus", "yak", "zebra")
NAME_MAX = 24
# Cores a class leaves to the app's server (thirty sessions keep it busy): its runs train on the others, with one
# thread at least. On 2 cores a run of 2 threads beside the busy server stalls at every OpenMP barrier.
SERVER_CORES = 1


def teacher_token(root: Path) -> str:
    """The teacher's secret: $CNN_TEACHER_TOKEN, else one made once and kept in the runs folder (mode 0600)."""
    if os.environ.get("CNN_TEACHER_TOKEN"):
        return os.environ["CNN_TEACHER_TOKEN"]
    from cnn_core.access import kept_secret

    return kept_secret(Path(root) / FOLDER / "teacher-token", lambda: secrets.token_urlsafe(24))


def is_teacher_token(root: Path, given: object) -> bool:
    """Whether `given` is the teacher's token (constant time; anything that is not a string is not)."""
    return isinstance(given, str) and bool(given) and hmac.compare_digest(given.encode(), teacher_token(root).encode())


def random_name(rng: secrets.SystemRandom | None = None) -> str:
    """A display name such as "blue otter"."""
    rng = rng or secrets.SystemRandom()
    return f"{rng.choice(ADJECTIVES)} {rng.choice(ANIMALS)}"


def clean_name(name: str) -> str:
    """A display name as shown to the class: printable, single spaces, at most NAME_MAX characters; ConfigError
    when nothing is left."""
    cleaned = re.sub(r"\s+", " ", "".join(ch for ch in str(name) if ch.isprintable())).strip()[:NAME_MAX].strip()
    if not cleaned:
        raise ConfigError("Type a name (or keep the one suggested): your runs show it to the class.")
    return cleaned


@dataclass(frozen=True)
class ClassLimits:
    """What students may start. The teacher's runs are not limited."""

    max_epochs: int = 5
    models: tuple[str, ...] = ()  # allowed models; () allows every one
    max_parameters: int = 500_000
    runs_at_once: int = 2  # the class's runs training at the same time
    running_per_student: int = 1
    waiting_per_student: int = 1

    def check(self) -> ClassLimits:
        problems = []
        if self.max_epochs < 1:
            problems.append("Max epochs must be at least 1.")
        if self.max_parameters < 1000:
            problems.append("Max parameters must be at least 1,000.")
        if self.runs_at_once < 1 or self.running_per_student < 1 or self.waiting_per_student < 0:
            problems.append("Runs at once and runs per student must be at least 1 (waiting at least 0).")
        if problems:
            raise ConfigError(" ".join(problems))
        return self

    def apply(self, config: TrainConfig) -> tuple[TrainConfig, list[str]]:
        """A student's config within the limits → (the config to run, one sentence per change). ConfigError when
        it cannot be made to fit (a model the teacher did not allow, or too big)."""
        from cnn_core.models import count_parameters, create_model

        if self.models and config.model not in self.models:
            raise ConfigError(f"In this class the models are {', '.join(self.models)}: choose one of them.")
        parameters = count_parameters(create_model(config.model, **config.model_args))
        if parameters > self.max_parameters:
            raise ConfigError(f"This model has {parameters:,} parameters; the class allows {self.max_parameters:,}. "
                              "Choose a smaller model (fewer channels or units).")
        notes = []
        if config.epochs > self.max_epochs:
            notes.append(f"Epochs set to {self.max_epochs}, the class's limit (you asked for {config.epochs}).")
            config = dataclasses.replace(config, epochs=self.max_epochs)
        return config, notes


@dataclass(frozen=True)
class Classroom:
    id: str
    started: float
    teacher: str  # the teacher's visitor tag (a hash of their cookie key)
    lesson: str | None = None  # a recipe name (cnn_core.presets)
    limits: ClassLimits = field(default_factory=ClassLimits)
    students: dict[str, str] = field(default_factory=dict)  # visitor tag → display name
    projected: str | None = None  # the run the teacher put on the projector
    step: int = 0  # the lesson's step the class is at (lesson_steps)

    def name_of(self, tag: str | None) -> str | None:
        if tag is None:
            return None
        return "teacher" if hmac.compare_digest(tag, self.teacher) else self.students.get(tag)

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["limits"]["models"] = list(self.limits.models)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Classroom:
        limits = dict(data.get("limits") or {})
        limits["models"] = tuple(limits.get("models") or ())
        known = {f.name for f in dataclasses.fields(ClassLimits)}
        return cls(data["id"], data["started"], data["teacher"], data.get("lesson"),
                   ClassLimits(**{k: v for k, v in limits.items() if k in known}), dict(data.get("students") or {}),
                   data.get("projected"), int(data.get("step") or 0))


class ClassStore:
    """The class of one runs folder (at most one at a time). Safe from many sessions: every change is a
    read-modify-write of class.json under this store's lock, and the file is replaced whole."""

    _locks: dict[Path, Any] = {}

    def __init__(self, root: Path):
        import threading

        self.root = Path(root)
        self.folder = self.root / FOLDER
        self.path = self.folder / "class.json"
        self._lock = ClassStore._locks.setdefault(self.path.resolve(), threading.Lock())

    _read: dict[Path, tuple[tuple[int, int], Classroom | None]] = {}  # path → (its stat, what it held)

    def current(self) -> Classroom | None:
        """The class in progress, or None (none started, or it ended). Every page of every session asks this on
        each run: the file is parsed again only when it changed (class.json is only ever replaced whole)."""
        try:
            stat = self.path.stat()
        except FileNotFoundError:
            return None
        key = (stat.st_mtime_ns, stat.st_ino)
        seen = ClassStore._read.get(self.path)
        if seen is not None and seen[0] == key:
            return seen[1]
        try:
            room = Classroom.from_dict(json.loads(self.path.read_text()))
        except FileNotFoundError:
            return None
        except (ValueError, KeyError, TypeError):  # a damaged file: no class (the teacher can start one)
            room = None
        ClassStore._read[self.path] = (key, room)
        return room

    def _write(self, room: Classroom) -> Classroom:
        self.folder.mkdir(parents=True, exist_ok=True)
        write_atomic(self.path, json.dumps(room.to_dict(), indent=1))
        return room

    def start(self, teacher_tag: str, lesson: str | None = None, limits: ClassLimits | None = None) -> Classroom:
        """A new class led by the visitor with `teacher_tag` (a class in progress is replaced)."""
        with self._lock:
            room = Classroom(f"class-{time.strftime('%Y%m%d-%H%M%S')}-{secrets.token_hex(2)}", time.time(),
                             teacher_tag, lesson, (limits or ClassLimits()).check())
            return self._write(room)

    def update(self, lesson: str | None = None, limits: ClassLimits | None = None, teacher: str | None = None
               ) -> Classroom:
        """Change the lesson, the limits or who the teacher is (the teacher link opened in another browser)."""
        with self._lock:
            room = self._need()
            return self._write(dataclasses.replace(room, lesson=lesson if lesson is not None else room.lesson,
                                                   limits=(limits or room.limits).check(),
                                                   teacher=teacher or room.teacher))

    def set_step(self, step: int) -> Classroom:
        """Move the class to a step of its lesson (the teacher's call)."""
        with self._lock:
            room = self._need()
            steps = lesson_steps(room.lesson)
            if not 0 <= step < len(steps):
                raise ConfigError(f"This lesson has steps 1 to {len(steps)}.")
            return self._write(dataclasses.replace(room, step=step))

    def project(self, run_id: str | None) -> Classroom:
        """Put a run on the projector (None: the class board alone). The teacher's call: pages ask first."""
        with self._lock:
            return self._write(dataclasses.replace(self._need(), projected=run_id))

    def share_drawing(self, tag: str, image: Any, prediction: str, confidence: float, model: str) -> Drawing:
        """Put a student's drawing on the class's wall with what their model read (`image`: the model's view,
        (S, S) floats in [0, 1]); ConfigError for a visitor who has not joined."""
        import numpy as np

        room = self._need()
        name = room.name_of(tag)
        if name is None:
            raise ConfigError("Join the class first (Class page) to share a drawing.")
        pixels = np.clip(np.asarray(image, dtype=np.float32) * 255, 0, 255).astype(np.uint8)
        drawing = Drawing(f"{time.time():.3f}-{secrets.token_hex(3)}", name, pixels.tolist(), prediction,
                          float(confidence), model)
        wall = self.folder / "wall"
        wall.mkdir(parents=True, exist_ok=True)
        write_atomic(wall / f"{drawing.id}.json", json.dumps(dataclasses.asdict(drawing)))
        return drawing

    def wall(self, limit: int = 24) -> list[Drawing]:
        """The newest drawings shared with the class, newest first."""
        files = sorted((self.folder / "wall").glob("*.json"), reverse=True)[:limit]
        out = []
        for file in files:
            try:
                out.append(Drawing(**json.loads(file.read_text())))
            except (OSError, ValueError, TypeError):  # being written, or damaged: left out
                continue
        return out

    def join(self, tag: str, name: str) -> str:
        """Record a student's display name; a name another student has gets a number ("blue otter 2")."""
        name = clean_name(name)
        with self._lock:
            room = self._need()
            taken = {n for t, n in room.students.items() if t != tag} | {"teacher"}
            unique, i = name, 2
            while unique.casefold() in {t.casefold() for t in taken}:
                unique, i = f"{name[:NAME_MAX - 3]} {i}", i + 1
            self._write(dataclasses.replace(room, students={**room.students, tag: unique}))
            return unique

    def end(self, runs: list[Path]) -> Path:
        """Archive the class's run folders (`runs`: configs, metrics, statuses and checkpoints) into
        <runs>/.class/archive/<class id>.zip and close the class; the archive's path."""
        with self._lock:
            room = self._need()
            archive = self.folder / "archive" / f"{room.id}.zip"
            archive.parent.mkdir(parents=True, exist_ok=True)
            partial = archive.with_suffix(".zip.partial")
            with zipfile.ZipFile(partial, "w", zipfile.ZIP_DEFLATED) as z:
                z.writestr("class.json", json.dumps(room.to_dict(), indent=1))
                for run in runs:
                    for file in sorted(run.rglob("*")):
                        if file.is_file():
                            z.write(file, f"runs/{run.name}/{file.relative_to(run)}")
                for file in sorted((self.folder / "wall").glob("*.json")):
                    z.write(file, f"wall/{file.name}")
            partial.replace(archive)
            shutil.rmtree(self.folder / "wall", ignore_errors=True)  # the next class starts with a clean wall
            self.path.unlink()
            return archive

    def _need(self) -> Classroom:
        room = self.current()
        if room is None:
            raise ConfigError("No class is in progress: the teacher starts one on the Class page.")
        return room


@dataclass(frozen=True)
class Drawing:
    """A digit a student drew and shared, as their model saw it, with what the model read."""

    id: str
    name: str
    pixels: list[list[int]]  # (S, S) uint8
    prediction: str
    confidence: float
    model: str


@dataclass(frozen=True)
class LessonStep:
    title: str
    try_this: str  # the one thing to try, in a sentence
    changes: dict[str, Any]  # TrainConfig fields set over the lesson's recipe

    def config(self, lesson: str | None) -> TrainConfig:
        from cnn_core.presets import PRESETS

        base = PRESETS[lesson].config if lesson in PRESETS else TrainConfig()
        return dataclasses.replace(base, **self.changes)


def lesson_steps(lesson: str | None) -> list[LessonStep]:
    """A class's lesson in steps, each with the one thing to try, over the lesson's recipe."""
    from cnn_core.presets import PRESETS

    base = PRESETS[lesson].config if lesson in PRESETS else TrainConfig()
    steps = [LessonStep("The recipe as the tutorial wrote it",
                        "Press Train without changing anything: this is the line to beat.", {}),
             LessonStep("A learning rate far too high",
                        "Set the learning rate to 1 and watch the loss explode: the run ends 'diverged'.", {"lr": 1.0}),
             LessonStep("Tiny batches", "Train with batch size 16: more steps per epoch. Does it learn faster per "
                        "epoch? Per second?", {"batch_size": 16})]
    if base.model != "lenet5_classic":
        steps.append(LessonStep("The 1998 network", "Switch the model to lenet5_classic (tanh, no BatchNorm) and "
                                "compare its curve with the recipe's.", {"model": "lenet5_classic", "model_args": {}}))
    steps.append(LessonStep("Your best", "Change anything you like within the class limits and climb the "
                            "leaderboard.", {}))
    return steps


@dataclass(frozen=True)
class BoardEntry:
    """One run on the class board."""

    run_id: str
    name: str
    teacher: bool
    model: str
    state: str
    epochs: list[int]
    val_acc: list[float]
    test_acc: float | None
    best_val_acc: float | None
    changes: str  # what differs from the lesson's recipe, e.g. "lr=0.01 · batch_size=128"
    step: int = 0  # the lesson's step the class was at when it started


def board(runs: list, room: Classroom) -> list[BoardEntry]:
    """The class's runs (RunInfo of this class) as board entries, best test accuracy first (then best
    validation accuracy: runs still training rank by what they reached so far)."""
    from cnn_core.presets import PRESETS

    lesson = PRESETS[room.lesson].config if room.lesson in PRESETS else None
    entries = []
    for run in runs:
        if run.config is None or run.meta.get("class") != room.id:
            continue
        epochs = [e for e in run.history.epochs if e.val_acc is not None]
        entries.append(BoardEntry(run.id, run.name or "?", run.meta.get("owner") == room.teacher, run.config.model,
                                  str(run.state), [e.epoch for e in epochs], [e.val_acc for e in epochs],
                                  run.history.test_acc, run.history.best_val_acc, _changes(run.config, lesson),
                                  int(run.meta.get("step") or 0)))
    return sorted(entries, key=lambda e: (-(e.test_acc or -1.0), -(e.best_val_acc or -1.0), e.run_id))


def _changes(config: TrainConfig, lesson: TrainConfig | None) -> str:
    """The fields of `config` that differ from the lesson's recipe (without a lesson: the usual ones)."""
    if lesson is None:
        changed = ["epochs", "batch_size", "optimizer", "lr"]
    else:
        fields = ("model", "epochs", "batch_size", "optimizer", "lr", "schedule", "augment", "weight_decay", "seed")
        changed = [f for f in fields if getattr(config, f) != getattr(lesson, f)]
    return " · ".join(f"{f}={getattr(config, f):g}" if isinstance(getattr(config, f), float)
                      else f"{f}={getattr(config, f)}" for f in changed) or "the lesson's recipe"
