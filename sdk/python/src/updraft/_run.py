"""`python3 -m updraft._run`: runs one Python task for the worker listening on
$UPDRAFT_SUPERVISOR (docs/python-protocol.md). Exit code 0 for success or skipped, 1 for
failed (including a worker that cannot be reached)."""

import os
import sys


def configure_output():
    """Each line reaches the task log when it is written (a killed task loses nothing), and
    `logging.info` is shown, as in Airflow's task logs."""
    import logging

    for stream in (sys.stdout, sys.stderr):
        try:
            stream.reconfigure(line_buffering=True)
        except (AttributeError, ValueError):
            pass
    logging.basicConfig(
        level=logging.INFO, stream=sys.stderr,
        format="[%(asctime)s] {%(filename)s:%(lineno)d} %(levelname)s - %(message)s",
    )


def main():
    from . import supervisor
    from .runtime import finish_message

    configure_output()

    path = os.environ.get("UPDRAFT_SUPERVISOR")
    if not path:
        sys.stderr.write("updraft._run: UPDRAFT_SUPERVISOR is not set; it is started by updraft's "
                         "worker\n")
        return 1
    try:
        client = supervisor.connect(path)
        info = client.request("start")["context"]
    except (OSError, supervisor.SupervisorError, KeyError) as err:
        sys.stderr.write(f"updraft._run: cannot start the task: {err}\n")
        return 1
    os.environ.pop("UPDRAFT_SUPERVISOR", None)

    def push(key, value):
        client.request("xcom_push", key=key, value=value)

    outcome = finish_message(info, push)
    try:
        client.request("finish", **outcome)
    except supervisor.SupervisorError as err:
        sys.stderr.write(f"updraft._run: cannot report the task's end: {err}\n")
        return 1
    client.close()
    return 1 if outcome["state"] == "failed" else 0


if __name__ == "__main__":
    code = main()
    import logging

    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    # Threads the task left running must not keep the try alive after `finish`.
    os._exit(code)
