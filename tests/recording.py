"""A test observer that records every call, so the event contract is asserted exactly."""
from labbook.observers import RunObserver


class RecordingObserver(RunObserver):
    def __init__(self, priority=0, return_id=None, fail_on=()):
        self.priority = priority
        self.return_id = return_id
        self.fail_on = set(fail_on)
        self.calls = []

    def _record(self, event, **kwargs):
        self.calls.append((event, kwargs))
        if event in self.fail_on or "*" in self.fail_on:
            raise RuntimeError(f"observer broke in {event}")

    def events(self):
        return [name for name, _ in self.calls]

    def last(self, event):
        return [kw for name, kw in self.calls if name == event][-1]

    def queued_event(self, ex_info, command, host_info, queue_time, config, meta_info, _id):
        self._record("queued_event", ex_info=ex_info, command=command, host_info=host_info,
                     queue_time=queue_time, config=config, meta_info=meta_info, _id=_id)
        return self.return_id

    def started_event(self, ex_info, command, host_info, start_time, config, meta_info, _id):
        self._record("started_event", ex_info=ex_info, command=command, host_info=host_info,
                     start_time=start_time, config=config, meta_info=meta_info, _id=_id)
        return self.return_id

    def heartbeat_event(self, info, captured_out, beat_time, result):
        self._record("heartbeat_event", info=dict(info), captured_out=captured_out,
                     beat_time=beat_time, result=result)

    def completed_event(self, stop_time, result):
        self._record("completed_event", stop_time=stop_time, result=result)

    def interrupted_event(self, interrupt_time, status):
        self._record("interrupted_event", interrupt_time=interrupt_time, status=status)

    def failed_event(self, fail_time, fail_trace):
        self._record("failed_event", fail_time=fail_time, fail_trace=fail_trace)

    def resource_event(self, filename):
        self._record("resource_event", filename=filename)

    def artifact_event(self, name, filename, metadata=None, content_type=None):
        self._record("artifact_event", name=name, filename=filename, metadata=metadata,
                     content_type=content_type)

    def log_metrics(self, metrics_by_name, info):
        self._record("log_metrics", metrics_by_name=metrics_by_name, info=dict(info))

    def join(self):
        self.calls.append(("join", {}))
