"""The Celery app of the hooks document, with tuspluggy's task names.

    celery -A rustus_celery worker
    tuspluggy serve --hooks-amqp-url "amqp://guest:guest@localhost:5672" \
        --hooks-amqp-exchange "celery" --hooks-amqp-exchange-kind "direct" \
        --hooks-amqp-routing-key "celery" --hooks-amqp-celery "yes"

Task names are ``<--hooks-amqp-queues-prefix>.<event>``: ``tuspluggy.post-create`` with the
default prefix. Optional environment (used by the tests): CELERY_BROKER_URL, TASK_PREFIX
(when the server runs with another --hooks-amqp-queues-prefix), and HOOKS_RECEIVER_LOG, a
file each task appends its hook to as one JSON line.
"""

import json
import os

import celery

app = celery.Celery("rustus_celery")
app.conf.update(
    broker_url=os.environ.get("CELERY_BROKER_URL", "amqp://guest:guest@localhost:5672"),
)
PREFIX = os.environ.get("TASK_PREFIX", "tuspluggy")


def remember(hook_name, data):
    path = os.environ.get("HOOKS_RECEIVER_LOG")
    if path:
        task_id = celery.current_task.request.id if celery.current_task else None
        with open(path, "a") as file:
            file.write(json.dumps({"hook_name": hook_name, "task_id": task_id, "payload": data}) + "\n")


@app.task(name=f"{PREFIX}.pre-create")
def pre_create(data):
    print(f"PRE CREATE: {data}")
    remember("pre-create", data)


@app.task(name=f"{PREFIX}.post-create")
def post_create(data):
    print(f"POST CREATE: {data}")
    remember("post-create", data)


@app.task(name=f"{PREFIX}.post-finish")
def post_finish(data):
    print(f"POST FINISH: {data}")
    remember("post-finish", data)


@app.task(name=f"{PREFIX}.pre-terminate")
def pre_terminate(data):
    print(f"PRE TERMINATE: {data}")
    remember("pre-terminate", data)


@app.task(name=f"{PREFIX}.post-terminate")
def post_terminate(data):
    print(f"POST TERMINATE: {data}")
    remember("post-terminate", data)


@app.task(name=f"{PREFIX}.post-receive")
def post_receive(data):
    print(f"POST RECEIVE: {data}")
    remember("post-receive", data)
