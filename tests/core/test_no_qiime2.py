"""The core is usable from plain Python: importing every q2_mgm.core module loads no QIIME 2 package."""
import pathlib
import subprocess
import sys

CORE = pathlib.Path(__file__).resolve().parents[2] / "q2_mgm" / "core"


def core_modules():
    return sorted("q2_mgm." + ".".join(path.relative_to(CORE.parent).with_suffix("").parts).replace(".__init__", "")
                  for path in CORE.rglob("*.py"))


def test_the_core_imports_no_qiime2():
    modules = core_modules()
    assert "q2_mgm.core.training.fitting" in modules and "q2_mgm.core.tokenizer" in modules
    script = ("import sys\n" + "".join(f"import {m}\n" for m in modules)
              + "loaded = sorted(m for m in sys.modules if m.split('.')[0] in ('qiime2', 'q2cli', 'q2templates') "
                "or m.split('.')[0].startswith('q2_') and m.split('.')[0] != 'q2_mgm')\n"
                "print(','.join(loaded))\n")
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "", f"q2_mgm.core imports QIIME 2 packages: {result.stdout.strip()}"


def test_every_core_module_imports_first():
    """Each module imported first, in a fresh interpreter: no import cycle depends on which is loaded first (a
    benchmark that imports core.transfer first once met one)."""
    script = ("import importlib, sys\n"
              "for name in sys.argv[1:]:\n"
              "    for loaded in [m for m in sys.modules if m.startswith('q2_mgm')]:\n"
              "        del sys.modules[loaded]\n"
              "    importlib.import_module(name)\n")
    result = subprocess.run([sys.executable, "-c", script, *core_modules()], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-2000:]
