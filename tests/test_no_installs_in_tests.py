"""No test installs anything (issue 20): system packages and Python packages come from `make install` and
`make install-browser` (which `make test` runs), so a test run never changes the machine it runs on. Scans every
test module for a command line that runs apt, apt-get, dpkg or a pip install."""
from __future__ import annotations

import re
from pathlib import Path

TESTS = Path(__file__).resolve().parent
# a string literal that is itself an installer command, or a list/tuple whose first element is one
INSTALLER = re.compile(r"""(["'])(sudo\s+(-n\s+)?)?(apt-get|apt|dpkg)\1|["'](apt-get|apt)\s+install\b|["']pip["']\s*,\s*["']install["']"""
                       r"""|\bshutil\.which\(\s*["'](apt-get|apt|dpkg)["']""")


def test_no_test_runs_an_installer():
    found = [f"{p.name}:{i}: {line.strip()}" for p in sorted(TESTS.glob("*.py")) if p.name != Path(__file__).name
             for i, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1) if INSTALLER.search(line)]
    assert found == [], "tests must not install packages (use the Makefile's install targets):\n" + "\n".join(found)


def test_the_scan_finds_an_installer_call():
    for line in ('subprocess.run([apt, "install", "-y", "chromium"])  # apt = shutil.which("apt-get")',
                 'subprocess.run(["apt-get", "install", "-y", "chromium"])', 'os.system("apt-get install -y x")',
                 'subprocess.run([sys.executable, "-m", "pip", "install", "x"])'):
        assert INSTALLER.search(line), line
    assert not INSTALLER.search('pytest.skip("install it with `make install-browser`")')
