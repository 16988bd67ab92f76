import pytest

from tuspluggy.testing import ServerProcess


@pytest.fixture
def data_dir(tmp_path):
    path = tmp_path / "data"
    path.mkdir()
    return str(path)


@pytest.fixture
def server(data_dir):
    """A real `tuspluggy serve` process with default options, storing in a temp dir."""
    with ServerProcess(data_dir=data_dir) as process:
        yield process


@pytest.fixture
def make_server(data_dir):
    """Start real servers with extra options: make_server("--max-file-size", "100")."""
    started = []

    def make(*args, **kwargs):
        kwargs.setdefault("data_dir", data_dir)
        process = ServerProcess(*args, **kwargs).start()
        started.append(process)
        return process

    yield make
    for process in started:
        process.stop()


@pytest.fixture
def client():
    import httpx

    with httpx.Client(timeout=30) as c:
        yield c


def process_or_in_process(kind, data_dir, options):
    """The same server as a real process or in this process, from option values
    (``{"max_file_size": 10}`` → ``--max-file-size 10``)."""
    from tuspluggy.testing import ThreadServer

    if kind == "process":
        args = []
        for name, value in options.items():
            args += ["--" + name.replace("_", "-"), "yes" if value is True else str(value)]
        return ServerProcess(*args, data_dir=data_dir)
    return ThreadServer(data_dir=data_dir, info_dir=data_dir, **options)
