"""Report steps and attachments for the code below the run (observe, kube,
observations): it writes here, and the report (secctx/report) is the sink, set when
the report is imported (the plugin imports it). With no sink (the library used on its
own) a step is a plain block and an attachment goes nowhere, as Allure's own calls do
outside a test. So observing and the API client never import the report."""
from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any, Protocol


class Sink(Protocol):
    def step(self, title: str) -> contextlib.AbstractContextManager: ...
    def attach_text(self, name: str, text: str) -> None: ...
    def attach_yaml(self, name: str, obj: Any) -> None: ...
    def attach_caps(self, status: Any) -> None: ...
    def dynamic(self, what: str, *args: Any) -> None: ...


_sink: Sink | None = None


def set_sink(sink: Sink | None) -> None:
    global _sink
    _sink = sink


@contextlib.contextmanager
def step(title: str) -> Iterator[None]:
    if _sink is None:
        yield
        return
    with _sink.step(title):
        yield


def attach_text(name: str, text: str) -> None:
    if _sink is not None:
        _sink.attach_text(name, text)


def attach_yaml(name: str, obj: Any) -> None:
    if _sink is not None:
        _sink.attach_yaml(name, obj)


def attach_caps(status: Any) -> None:
    """The capability sets of a process status, decoded (observe.Status)."""
    if _sink is not None:
        _sink.attach_caps(status)


def label(name: str, value: str) -> None:
    """A label on the test the current case belongs to."""
    if _sink is not None:
        _sink.dynamic("label", name, value)
