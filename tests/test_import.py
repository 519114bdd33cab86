import subprocess
import sys
import time


def test_import_is_fast_and_lazy():
    code = (
        "import time, sys; t = time.perf_counter(); import indiseek; "
        "print(time.perf_counter() - t); print('torch' in sys.modules, 'scanpy' in sys.modules)"
    )
    subprocess.run([sys.executable, "-c", "import indiseek"], check=True)  # warm the caches
    t0 = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    elapsed, lazy = out.stdout.strip().splitlines()
    assert float(elapsed) < 5.0
    assert wall < 10.0
    assert lazy == "False False"


def test_namespaces_resolve():
    import indiseek as isk

    for name in ("pp", "tl", "pl", "datasets", "sim"):
        assert getattr(isk, name).__name__ == f"indiseek.{name}"
    assert callable(isk.fit_specific)
    assert isk.IndiSeek.__name__ == "IndiSeek"
    assert "IndiSeek" in dir(isk)
