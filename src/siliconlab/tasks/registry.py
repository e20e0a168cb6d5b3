"""The one place tasks are registered. `siliconlab.load`, eval, batch and serve ask it; none names a task.

A model name is the newest registered task that claims it (by name: `Task.claims`); any other encoder (a local
folder, a hub id) is the task registered for its head (embedding or classification). Tests and plug-ins add a
task with one `register(MyTask())`.
"""

from __future__ import annotations

from typing import Any

from siliconlab.errors import SiliconlabError, UsageError
from siliconlab.tasks.chat import RetrievalChatTask
from siliconlab.tasks.classification import ClassificationTask
from siliconlab.tasks.embedding import EmbeddingTask
from siliconlab.tasks.generation import GenerationTask
from siliconlab.tasks.task import Task

_TASKS: dict[str, Task] = {}


def register(task: Task) -> Task:
    """Add (or replace) a task under its name; later registrations are asked first."""
    _TASKS.pop(task.name, None)
    _TASKS[task.name] = task
    return task


def unregister(name: str) -> None:
    _TASKS.pop(name, None)


def get_task(name: str) -> Task:
    if name not in _TASKS:
        raise UsageError(f"unknown task '{name}': known tasks are {', '.join(_TASKS)}")
    return _TASKS[name]


def tasks() -> list[Task]:
    """Every task, newest registration first (the order names are claimed in)."""
    return list(reversed(_TASKS.values()))


def task_claiming(name: str) -> Task | None:
    """The task that claims the model name `name` before loading, if one does."""
    return next((task for task in tasks() if task.claims(name)), None)


def task_for_head(head: str) -> Task:
    """The task an encoder with this head (models/base.HEADS) is when no task claims it by name."""
    task = next((task for task in tasks() if task.head == head), None)
    if task is None:
        raise SiliconlabError(f"no task is registered for models with a {head} head")
    return task


def task_of(pipeline: Any) -> Task:
    """The task a loaded pipeline belongs to (by its class: a subclass belongs to its nearest registered one)."""
    for cls in type(pipeline).__mro__:
        for task in tasks():
            if task.pipeline_class is cls:
                return task
    raise SiliconlabError(f"'{getattr(pipeline, 'model', pipeline)}' is no registered task's pipeline")


def task_models() -> dict[str, str]:
    """Built-in model names and the task each is."""
    return {model: task.name for task in reversed(tasks()) for model in task.models}


for _builtin in (EmbeddingTask(), ClassificationTask(), GenerationTask(), RetrievalChatTask()):
    register(_builtin)
