"""DAS files in other formats through dascore (the optional ``das`` extra): physics.das_io's fallback.

CI installs the extra (``pip install -e '.[das]'``) and fails without it; locally these tests skip without dascore.
"""

from __future__ import annotations

import os
import sys

import numpy as np
import pytest

from physics.das_detect import DasDetector, DetectorParams, bands_for_rate
from physics.das_io import iter_das, read_das_info
from twin.errors import DataIntegrityError


def _dascore():
    """dascore: skipped locally without the ``das`` extra, a failure under CI (which installs it)."""
    try:
        import dascore
    except ImportError as exc:
        if os.environ.get("CI"):
            pytest.fail(f"the dascore tests must run in CI (pip install -e '.[das]'): {exc}")
        pytest.skip("dascore not installed: pip install -e '.[das]'")
    return dascore


def _patch_with_a_burst():
    """dascore's example patch (300 channels at 1 m × 2000 samples at 250 Hz, uniform random noise 0–1) with a
    40 Hz burst from 4 to 5 s at distance 150 m (Gaussian footprint, 5 m), 3× the noise's full range."""
    dc = _dascore()
    patch = dc.get_example_patch()
    data = np.array(patch.transpose("distance", "time").data, dtype=np.float64)
    t = np.arange(data.shape[1]) * 0.004
    dist = np.arange(data.shape[0])
    burst = 3.0 * np.sin(2 * np.pi * 40.0 * t) * ((t >= 4.0) & (t < 5.0))
    data += np.exp(-0.5 * ((dist - 150.0) / 5.0) ** 2)[:, None] * burst[None, :]
    return patch.transpose("distance", "time").new(data=data)


def test_a_dascore_file_is_read_and_detected(tmp_path):
    """A patch written by dascore as DASDAE is read back through iter_das: layout from its steps (1 m, 250 Hz,
    300 channels), chunks time-major float32 equal to the patch's data, and the detector (bands below the 125 Hz
    Nyquist) finds the one burst at channel 150 ± 1."""
    patch = _patch_with_a_burst()
    path = tmp_path / "example.h5"
    patch.io.write(path, "DASDAE")
    info = read_das_info(path)
    assert (info.layout.n_channel, info.layout.dx_m, info.layout.fs_hz) == (300, 1.0, 250.0)
    assert info.n_time == 2000 and info.start_time.tzinfo is not None and "dascore" in info.source
    chunks = list(iter_das(path, 1.0))
    assert [c.shape for _, c in chunks] == [(250, 300)] * 8 and chunks[0][1].dtype == np.float32
    assert [t for t, _ in chunks] == pytest.approx(np.arange(8.0))
    whole = np.concatenate([c for _, c in chunks])
    np.testing.assert_array_equal(whole, patch.transpose("time", "distance").data.astype(np.float32))
    assert bands_for_rate(250.0) == ((3.0, 45.0), (45.0, 100.0))  # 0.8 × the 125 Hz Nyquist
    det = DasDetector(info.layout, DetectorParams(bands=bands_for_rate(250.0)))
    events = det.run(chunks)
    assert len(events) == 1
    assert abs(events[0].channel - 150.0) <= 1.0
    assert 3.8 <= events[0].onset_s <= 4.2


def test_twin_tunnel_detect_reads_a_dascore_file(tmp_path):
    """`twin tunnel detect FILE` on the DASDAE file: the same one event in events.csv (bands fitted to 250 Hz)."""
    import pandas as pd
    from click.testing import CliRunner

    from twin.cli import main

    path = tmp_path / "example.h5"
    _patch_with_a_burst().io.write(path, "DASDAE")
    r = CliRunner().invoke(main, ["tunnel", "detect", str(path), "--no-locate", "--out", str(tmp_path / "det")],
                           catch_exceptions=False)
    assert r.exit_code == 0, r.output
    df = pd.read_csv(tmp_path / "det" / "events.csv")
    assert len(df) == 1 and abs(df["channel"].iloc[0] - 150.0) <= 1.0


def test_other_files_without_dascore_name_the_extra(tmp_path, monkeypatch):
    """A file neither NetCDF in the twin's layout nor readable by dascore: the NetCDF reader's reason plus
    dascore's; with dascore absent (import blocked), the message names the extra to install."""
    _dascore()
    text = tmp_path / "text.bin"
    text.write_text("not a DAS file")
    with pytest.raises(DataIntegrityError, match="not a readable NetCDF4.*nor does dascore read it"):
        read_das_info(text)
    monkeypatch.setitem(sys.modules, "dascore", None)  # `import dascore` raises ImportError
    with pytest.raises(DataIntegrityError, match=r"shenzhen-twin\[das\]"):
        next(iter_das(text))
