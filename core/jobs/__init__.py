"""Long jobs off the web server: Ray workers, their job folders and the manager pages use.

- `cluster`   start the embedded Ray instance or join a class cluster; the worker actor
- `files`     a job's folder (<runs>/.jobs/<id>/): state, events, heartbeat, cancel file
- `manager`   JobManager: submit / status / cancel, read from the job folders

Layering: the top of core; builds on `core.training`. Importing `files` or `manager` does not
import Ray; `cluster` does.
"""
