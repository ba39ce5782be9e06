"""Share work items between several phones; survive phones that disappear.

``run_sharded`` starts one worker thread per device. Workers pull items from one shared queue
and call ``fn(device, item)``. What happens next depends on how ``fn`` ends:

* returns ``result`` -> ``on_result(item, device, result)`` is called at once (calls are
  serialized by a lock, so the callback need not be thread-safe) and the item is done;
* raises :class:`DeviceError` -> the device is retired (its worker stops) and the item goes
  back to the *front* of the queue for the remaining devices. An item can therefore be tried
  at most once per device; ``max_attempts`` lowers that bound;
* raises any other :class:`ProfilerError` -> the item is recorded as failed (a problem of this
  item, e.g. the model does not run) and the device carries on;
* raises anything else (a bug) -> workers stop after their current item and the exception is
  re-raised in the caller. Finished items were already handed to ``on_result``.

When the last device is retired (or ``stop`` is set) the items still queued are returned in
``ShardReport.not_done``; nothing measured is lost. This module knows nothing about adb: a
"device" is any object (``DeviceSession`` in practice; its ``name`` or ``serial`` names it in the
report).
"""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass, field
from typing import (Any, Callable, Deque, Dict, Generic, Iterable, List, Optional, Sequence,
                    Tuple, TypeVar)

from profiler.errors import DeviceError, ProfilerError

D = TypeVar("D")
T = TypeVar("T")
R = TypeVar("R")


def device_name(device: Any) -> str:
    """``device.name`` (or ``device.serial``) when it has one, else ``str(device)``."""
    serial = getattr(device, "name", None) or getattr(device, "serial", None)
    return str(serial) if serial else str(device)


@dataclass
class ShardReport(Generic[T]):
    done: List[Tuple[T, str]] = field(default_factory=list)      # (item, device) in finish order
    not_done: List[T] = field(default_factory=list)              # no device left, or stopped
    failed: List[Tuple[T, ProfilerError]] = field(default_factory=list)
    retired: Dict[str, DeviceError] = field(default_factory=dict)  # device -> why it was dropped

    @property
    def complete(self) -> bool:
        return not self.not_done and not self.failed


def run_sharded(devices: Sequence[D], work_items: Iterable[T], fn: Callable[[D, T], R],
                on_result: Optional[Callable[[T, D, R], None]] = None, *,
                setup: Optional[Callable[[D], None]] = None,
                max_attempts: Optional[int] = None,
                stop: Optional[threading.Event] = None,
                on_event: Optional[Callable[[str, str, Optional[T], ProfilerError], None]] = None,
                ) -> ShardReport[T]:
    """Run ``fn(device, item)`` for every item on whichever device is free.

    ``setup(device)`` runs once per device in its worker before it takes items (e.g. push the
    SDK); a ProfilerError there retires the device. ``on_event(kind, device_name, item, error)``
    reports ``"retired"`` (item None when retired in setup), ``"requeued"`` and ``"failed"``;
    it is serialized with ``on_result``. ``max_attempts`` caps how many device losses one item
    may be involved in before it is recorded as failed. Setting ``stop`` lets in-flight items
    finish and returns the rest as not done.
    """
    if max_attempts is not None and max_attempts < 1:
        raise ValueError("max_attempts must be >= 1")
    devices = list(devices)
    queue: Deque[Tuple[T, int]] = deque((item, 0) for item in work_items)
    cond = threading.Condition()
    out_lock = threading.Lock()
    halt = threading.Event()
    in_flight = [0]
    fatal: List[BaseException] = []
    report: ShardReport[T] = ShardReport()

    def halted() -> bool:
        return halt.is_set() or (stop is not None and stop.is_set())

    def emit(kind: str, name: str, item: Optional[T], err: ProfilerError) -> None:
        if on_event is not None:
            on_event(kind, name, item, err)

    def die(err: BaseException) -> None:
        with cond:
            fatal.append(err)
            halt.set()
            cond.notify_all()

    def worker(dev: D, name: str) -> None:
        if setup is not None:
            try:
                setup(dev)
            except ProfilerError as e:
                err = e if isinstance(e, DeviceError) else DeviceError(f"device {name}: setup "
                                                                       f"failed: {e}")
                try:
                    with out_lock:
                        report.retired[name] = err
                        emit("retired", name, None, err)
                except BaseException as cb_err:  # noqa: BLE001 - re-raised in the caller
                    die(cb_err)
                return
            except BaseException as e:  # noqa: BLE001 - re-raised in the caller
                die(e)
                return
        while True:
            with cond:
                while not queue and in_flight[0] > 0 and not halted():
                    cond.wait(0.1)
                if halted() or not queue:
                    return
                item, attempts = queue.popleft()
                in_flight[0] += 1
            outcome, err, result = "done", None, None
            try:
                result = fn(dev, item)
            except DeviceError as e:
                outcome, err = "device", e
            except ProfilerError as e:
                outcome, err = "failed", e
            except BaseException as e:  # noqa: BLE001 - re-raised in the caller
                outcome, err = "fatal", e
            try:
                with out_lock:
                    if outcome == "done":
                        if on_result is not None:
                            on_result(item, dev, result)
                        report.done.append((item, name))
                    elif outcome == "failed":
                        report.failed.append((item, err))
                        emit("failed", name, item, err)
                    elif outcome == "device":
                        attempts += 1
                        report.retired[name] = err
                        emit("retired", name, item, err)
                        if max_attempts is not None and attempts >= max_attempts:
                            outcome = "gave_up"
                            report.failed.append((item, err))
                            emit("failed", name, item, err)
                        else:
                            emit("requeued", name, item, err)
            except BaseException as e:  # noqa: BLE001 - a callback failed: re-raised in the caller
                outcome, err = "fatal", e
            with cond:
                in_flight[0] -= 1
                if outcome in ("device", "fatal"):
                    queue.appendleft((item, attempts))
                if outcome == "fatal":
                    fatal.append(err)
                    halt.set()
                cond.notify_all()
            if outcome in ("device", "gave_up", "fatal"):
                return

    names: List[str] = []
    for dev in devices:
        name = device_name(dev)
        while name in names:
            name += "'"
        names.append(name)
    threads = [threading.Thread(target=worker, args=(dev, name), name=f"shard-{name}",
                                daemon=True) for dev, name in zip(devices, names)]
    for t in threads:
        t.start()
    try:
        for t in threads:
            while t.is_alive():
                t.join(0.1)
    except BaseException:
        # e.g. KeyboardInterrupt: let in-flight items finish (their own timeouts bound them)
        halt.set()
        with cond:
            cond.notify_all()
        for t in threads:
            t.join()
        raise
    if fatal:
        raise fatal[0]
    report.not_done = [item for item, _ in queue]
    return report
