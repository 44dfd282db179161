"""Importing openretina, its models and its plotting modules loads no plotting or video library."""

from __future__ import annotations

import subprocess
import sys


def test_imports_do_not_load_matplotlib_or_video_libraries() -> None:
    code = (
        "import sys\n"
        "import openretina, openretina.models, openretina.plotting, openretina.utils.plotting\n"
        "import openretina.utils.video_analysis, openretina.insilico.tuning_analyses\n"
        "import openretina.insilico.receptive_fields\n"
        "heavy = {'matplotlib', 'imageio', 'PIL', 'IPython', 'cv2'}\n"
        "loaded = sorted(m for m in sys.modules if m.split('.')[0] in heavy)\n"
        "print(loaded)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120)
    assert result.stdout.strip() == "[]", result.stdout
