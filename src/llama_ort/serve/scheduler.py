"""The scheduler: one thread owns the model and decodes every request's tokens together, one batch step at a time.

Requests wait in a queue and join the running batch as soon as it has room; a request is refused (`QueueFull`,
which the API answers with 429) only when the batch and the queue are both full. Each step's tokens go to their
requests' asyncio queues without waiting for anyone, so a client that reads slowly only lets its own tokens pile
up, and a request that is cancelled (its client went away) leaves the batch before the next step.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections import deque
from collections.abc import AsyncIterator

from ..errors import fail
from .engine import Batch, Engine, GenerateOptions, Token

log = logging.getLogger("llama_ort.serve")

MAX_BATCH_SIZE = 16  # requests decoded together
MAX_WAITING = 64  # requests waiting for room in a full batch; one more is refused


class QueueFull(Exception):
    """The batch and the wait queue hold their maximum: the client should retry later."""


class Job:
    """One request's generation: its tokens arrive on the event loop that submitted it."""

    def __init__(self, prompt_ids: list[int], options: GenerateOptions, scheduler: Scheduler):
        self.prompt_ids = prompt_ids
        self.options = options
        self._scheduler = scheduler
        self._loop = asyncio.get_running_loop()
        self._tokens: asyncio.Queue[Token | BaseException | None] = asyncio.Queue()  # None: cancelled
        self._cancelled = threading.Event()

    @property
    def is_cancelled(self) -> bool:
        return self._cancelled.is_set()

    def cancel(self) -> None:
        """Stop generating (the client went away) and end `tokens`; call from the event loop."""
        if not self.is_cancelled:
            self._cancelled.set()
            self._tokens.put_nowait(None)
            self._scheduler.wake()

    async def tokens(self) -> AsyncIterator[Token]:
        """The generated tokens: the last one has a finish_reason, unless the job was cancelled."""
        while True:
            item = await self._tokens.get()
            if item is None:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
            if item.finish_reason:
                return

    def deliver(self, item: Token | BaseException) -> None:
        """Called from the scheduler thread."""
        try:
            self._loop.call_soon_threadsafe(self._tokens.put_nowait, item)
        except RuntimeError:  # the event loop has closed: nobody is listening any more
            self._cancelled.set()


class Scheduler:
    def __init__(self, engine: Engine, max_batch_size: int = MAX_BATCH_SIZE, max_waiting: int = MAX_WAITING):
        if max_batch_size < 1:
            raise fail("max_batch_size", f"must be at least 1, got {max_batch_size}")
        if max_waiting < 0:
            raise fail("max_waiting", f"must be 0 or more, got {max_waiting}")
        self.engine = engine
        self.max_batch_size = max_batch_size
        self.max_waiting = max_waiting
        self._waiting: deque[Job] = deque()
        self._running: dict[int, Job] = {}  # batch row -> job
        self._wakeup = threading.Condition()
        self._is_closing = False
        self._thread = threading.Thread(target=self._run, name="llama-ort-scheduler", daemon=True)
        self._batch = engine.open_batch(max_batch_size)  # its KV cache, allocated once for the server's life

    def start(self) -> None:
        self._thread.start()

    def close(self) -> None:
        with self._wakeup:
            self._is_closing = True
            self._wakeup.notify()
        self._thread.join()
        for job in [*self._waiting, *self._running.values()]:
            job.deliver(RuntimeError("the server is shutting down"))

    def submit(self, prompt_ids: list[int], options: GenerateOptions) -> Job:
        """Queue a generation; call from the event loop. Raises QueueFull."""
        job = Job(prompt_ids, options, self)
        with self._wakeup:
            # Running and waiting jobs counted together: a job waits here until the scheduler thread, busy with
            # a step, admits it, so one that runs at the next step is still in _waiting. Cancelled jobs leave
            # before the next admission: their room is free already.
            live = sum(not other.is_cancelled for other in [*self._running.values(), *self._waiting])
            if live >= self.max_batch_size + self.max_waiting:
                raise QueueFull(f"{self.max_batch_size} requests are running and {self.max_waiting} waiting")
            self._waiting.append(job)
            self._wakeup.notify()
        return job

    def wake(self) -> None:
        with self._wakeup:
            self._wakeup.notify()

    def load(self) -> dict[str, int]:
        """Requests being decoded and requests waiting for room in the batch."""
        with self._wakeup:
            return {"running": len(self._running),
                    "waiting": sum(not job.is_cancelled for job in self._waiting)}

    def _run(self) -> None:
        batch = self._batch
        while self._wait_for_work():
            self._drop_cancelled(batch)
            self._admit(batch)
            if not self._running:
                continue
            try:
                tokens = batch.step()
            except Exception as e:  # a provider error or a bug: fail the step's requests, keep serving the rest
                log.exception("generation failed")
                for row, job in self._running.items():
                    job.deliver(e)
                    batch.drop(row)
                with self._wakeup:
                    self._running.clear()
                continue
            self._deliver(tokens)

    def _wait_for_work(self) -> bool:
        """Block while there is nothing to decode; False once closing."""
        with self._wakeup:
            while not self._is_closing and not self._running and not self._waiting:
                self._wakeup.wait()
            return not self._is_closing

    def _drop_cancelled(self, batch: Batch) -> None:
        for row, job in list(self._running.items()):
            if job.is_cancelled:
                batch.drop(row)
                with self._wakeup:
                    del self._running[row]

    def _admit(self, batch: Batch) -> None:
        """Move waiting jobs into the batch, oldest first, while it has room."""
        while True:
            with self._wakeup:
                while self._waiting and self._waiting[0].is_cancelled:
                    self._waiting.popleft()
                if not self._waiting or len(self._running) >= self.max_batch_size:
                    return
                job = self._waiting[0]
            try:
                row = batch.add(job.prompt_ids, job.options)
            except Exception as e:  # a bug in the engine: only this request fails
                log.exception("starting a generation failed")
                job.deliver(e)
                with self._wakeup:
                    self._waiting.popleft()
                continue
            if row is None:
                return
            with self._wakeup:
                self._waiting.popleft()
                self._running[row] = job

    def _deliver(self, tokens: dict[int, Token]) -> None:
        for row, token in tokens.items():
            job = self._running[row]
            job.deliver(token)
            if token.finish_reason:
                with self._wakeup:
                    del self._running[row]
