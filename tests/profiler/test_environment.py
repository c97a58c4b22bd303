import subprocess
import sys

from profiler.devices import load_device
from profiler.environment import collect_environment, cpu_model, package_versions


def test_collect_environment_for_cpu_device():
    env = collect_environment(load_device("cpu"))
    for key in ("hostname", "date", "os", "python", "cpu_model", "cpu_count", "cpus_available",
                "packages"):
        assert key in env
    assert env["packages"]["numpy"] and env["packages"]["torch"]
    assert "gpu" not in env
    assert cpu_model()


def test_collect_environment_for_gpu_device_has_gpu_section():
    env = collect_environment(load_device("v100"))
    assert isinstance(env["gpu"], dict)


def test_versions_come_from_metadata_without_importing_runtimes():
    code = (
        "import sys\n"
        "from profiler.environment import package_versions\n"
        "import profiler.devices, profiler.protocol, profiler.backends\n"
        "v = package_versions()\n"
        "loaded = [m for m in ('onnxruntime', 'openvino', 'tensorrt', 'onnx', 'yaml') "
        "if m in sys.modules]\n"
        "assert not loaded, loaded\n"
        "print(sorted(v))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "numpy" in out.stdout


def test_package_versions_skip_absent_packages():
    v = package_versions()
    assert "numpy" in v
    assert all(isinstance(x, str) for x in v.values())
