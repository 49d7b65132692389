"""`mote flops`: the preset figures, the --check counters, one-line errors with exit status 2."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from mobile_mote.cli import main

pytestmark = [pytest.mark.usefixtures("torch_one_thread"), pytest.mark.filterwarnings("ignore")]


def _run(capsys, *argv):
    rc = main(["flops", *argv])
    out, err = capsys.readouterr()
    return rc, out, err


def test_mbv2_preset(capsys):
    rc, out, err = _run(capsys, "--space", "mbv2", "--arch", "mobilenetv2_100")
    assert rc == 0, err
    rec = json.loads(out)
    assert rec["macs"] == 300_774_272 and rec["params"] == 3_504_872
    assert rec["macs_m"] == 300.8 and rec["resolution"] == 224
    assert rec["timm_arch_def"][0] == ["ds_r1_k3_s1_c16"]
    assert rec["arch"] == rec["arch"].strip() and "ir_r1_k3_s2_e6_c24" in rec["arch"]


def test_mbv3_preset_compact(capsys):
    rc, out, _ = _run(capsys, "--space", "mbv3", "--arch", "mobilenetv3_large_100", "--compact")
    assert rc == 0 and out.count("\n") == 1
    rec = json.loads(out)
    assert rec["macs_m"] == 216.6 and rec["params"] == 5_483_032


def test_resolution_and_reduced(capsys):
    rc, out, _ = _run(capsys, "--space", "mbv2", "--arch", "mobilenetv2_100", "--resolution", "160", "--compact")
    assert rc == 0 and json.loads(out)["resolution"] == 160
    assert json.loads(out)["macs"] < 300_774_272
    rc, out, _ = _run(capsys, "--space", "nb201", "--arch",
                   "|avg_pool_3x3~0|+|nor_conv_1x1~0|skip_connect~1|+|nor_conv_1x1~0|skip_connect~1|skip_connect~2|",
                   "--reduced", "--compact")
    rec = json.loads(out)
    assert rc == 0 and rec["reduced"] is True and rec["resolution"] == 32


def test_check_reports_three_counters(capsys):
    arch = "|nor_conv_3x3~0|+|nor_conv_1x1~0|skip_connect~1|+|none~0|avg_pool_3x3~1|nor_conv_3x3~2|"
    rc, out, err = _run(capsys, "--space", "nb201", "--arch", arch, "--reduced", "--check", "--compact")
    assert rc == 0, err
    c = json.loads(out)["counters"]
    assert c["analytic"]["macs"] == c["fvcore"]["macs"]
    assert abs(c["ptflops"]["macs"] - c["analytic"]["macs"]) <= 1e-3 * c["analytic"]["macs"]
    assert c["analytic"]["params"] == c["fvcore"]["params"] == c["ptflops"]["params"]


@pytest.mark.parametrize("argv,needle", [
    (["--space", "resnet", "--arch", "x"], "unknown search space"),
    (["--space", "mbv2", "--arch", "garbage"], "stage"),
    (["--space", "nb201", "--arch", "|nor_conv_3x3~0|+|none~0|"], "not a cell"),
    (["--space", "nb201", "--arch", "|conv_9x9~0|+|none~0|none~1|+|none~0|none~1|none~2|"], "unknown operation"),
    (["--space", "mbv2", "--arch", "k4e6,k3e6|k3e6,k3e6,k3e6|k3e6,k3e6,k3e6,k3e6|k3e6,k3e6,k3e6|k3e6,k3e6,k3e6|k3e6"],
     "kernel"),
    (["--space", "mbv3", "--arch", "k3e4,k3e3|skip,k5e3se,k5e3se|k3e6,k3e2.5,k3e2.3,k3e2.3|k3e6se,k3e6se|"
                                   "k5e6se,k5e6se,k5e6se"], "cannot be skipped"),
    (["--space", "nb201", "--arch", "15625"], "not a cell"),  # indices belong to the benchmark reader
    (["--space", "mbv2", "--arch", "mobilenetv2_100", "--resolution", "0"], "resolution"),
    (["--space", "mbv2", "--arch", "mobilenetv2_100", "--num-classes", "-1"], "num_classes"),
    (["--space", "nb201", "--arch", "|nor_conv_3x3~0|+|none~0|none~1|+|none~0|none~1|none~2|", "--resolution", "33",
      "--check"], "multiple of 4"),
])
def test_bad_input_is_one_line_and_status_2(capsys, argv, needle):
    rc, out, err = _run(capsys, *argv)
    assert rc == 2
    assert out == ""
    assert err.count("\n") == 1 and err.startswith("mote flops: error:") and needle in err


def test_console_script():
    exe = shutil.which("mote") or str(Path(sys.executable).with_name("mote"))
    if not Path(exe).exists():
        pytest.skip("the `mote` console script is not installed (pip install -e .)")
    done = subprocess.run([exe, "flops", "--space", "mbv2", "--arch", "mobilenetv2_100", "--compact"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    rec = json.loads(done.stdout)
    assert (rec["macs"], rec["params"]) == (300_774_272, 3_504_872)


@pytest.mark.parametrize("argv", [
    ["--help"],
    ["flops", "--space", "mbv2", "--arch", "garbage"],
    ["search", "--space", "mbv2", "--flops", "1M", "--profile", "tiny"],
    ["search", "--space", "nb201", "--set", "epochs=0"],
    ["pareto", "--space", "mbv2", "--objectives", "score,banana"],
])
def test_the_cli_answers_without_torch(argv):
    """`mote --help` and input errors never pay for importing torch (the commands import it when they run)."""
    import subprocess
    import sys
    code = ("import sys\nfrom mobile_mote.cli import main\ntry:\n    main(%r)\nexcept SystemExit:\n    pass\n"
            "print('torch' in sys.modules)" % (argv,))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60).stdout
    assert out.strip().splitlines()[-1] == "False"
