"""Headless Chromium for the admin page's browser tests (tests/integration/test_browser_*.py).

Debian's chromium, chromium-driver and python3-selenium (scripts/deps.sh --test).  Only
Debian's own interpreter imports python3-selenium, so tests/CMakeLists.txt runs the
test_browser_* files with /usr/bin/python3; by hand:

    cd tests/integration && /usr/bin/python3 -m unittest -v test_browser_admin

require() skips a test when the browser or selenium is missing, except in CI (CI=true),
where the browser tests must run: there it fails instead.

A Browser is one chromedriver with its headless Chromium, in a process group of their own
(chromedriver leads it), and a throw-away profile directory.  close() quits the browser,
stops chromedriver and SIGKILLs what is left of that group; BrowserMixin registers it as a
cleanup, so it runs also when the test fails.  Screenshots go to the build tree's
artifacts/admin/ (beside BR_BINARY), never into the source tree.
"""

import atexit
import base64
import os
import shutil
import signal
import sys
import tempfile
import unittest

import harness

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"

# The two sizes every page is shot at: a laptop and a phone (CSS pixels).
DESKTOP = (1280, 800)
PHONE = (390, 844)

ARTIFACTS = os.path.join(os.path.dirname(os.path.abspath(harness.BINARY)), "artifacts", "admin")

try:
    from selenium import webdriver
    from selenium.common.exceptions import (NoAlertPresentException, NoSuchElementException,
                                            StaleElementReferenceException, TimeoutException)
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as EC
    from selenium.webdriver.support.ui import WebDriverWait
    _SELENIUM_ERROR = None
except ImportError as e:  # the skip (or the CI failure) says why
    _SELENIUM_ERROR = e


def unavailable():
    """None when the browser tests can run here, else the reason they cannot."""
    if _SELENIUM_ERROR is not None:
        return ("selenium is not importable by %s (%s): install python3-selenium "
                "(scripts/deps.sh --test) and run the test with /usr/bin/python3"
                % (sys.executable, _SELENIUM_ERROR))
    for path, package in ((CHROMIUM, "chromium"), (CHROMEDRIVER, "chromium-driver")):
        if not os.access(path, os.X_OK):
            return "%s is missing: install %s (scripts/deps.sh --test)" % (path, package)
    return None


def require():
    """Skip the calling test when the browser cannot run; in CI fail instead."""
    why = unavailable()
    if why is None:
        return
    if os.environ.get("CI") == "true":
        raise AssertionError("CI=true: the browser tests must run, but " + why)
    raise unittest.SkipTest(why)


_groups = set()   # process groups of chromedrivers still running


def _kill_group(pgid):
    try:
        os.killpg(pgid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    _groups.discard(pgid)


@atexit.register
def _kill_all():
    for pgid in list(_groups):
        _kill_group(pgid)


class Browser:
    """Headless Chromium driven by selenium: self.driver, waits and screenshots."""

    def __init__(self, timeout=10):
        self.timeout = timeout
        self.profile = tempfile.mkdtemp(prefix="br-chromium-")
        self.log_path = os.path.join(self.profile, "chromedriver.log")
        self.driver = None
        self.service = None
        self._console = []
        options = webdriver.ChromeOptions()
        options.binary_location = CHROMIUM
        for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                    "--user-data-dir=" + os.path.join(self.profile, "profile"),
                    "--hide-scrollbars", "--no-first-run", "--no-default-browser-check", "--disable-extensions",
                    "--disable-background-networking", "--disable-component-update", "--disable-sync",
                    "--disable-default-apps", "--disable-features=Translate,MediaRouter",
                    "--window-size=%d,%d" % DESKTOP, "--lang=en-US"):
            options.add_argument(arg)
        options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
        # Prompts (confirm) are answered by the test itself, never dismissed on their own.
        options.set_capability("unhandledPromptBehavior", "ignore")
        self._log = open(self.log_path, "wb")
        self.service = Service(CHROMEDRIVER, log_file=self._log, env=harness._child_env(),
                               # A group of its own (the browser joins it), SIGKILLed when the test
                               # runner dies.
                               popen_kw={"start_new_session": True, "preexec_fn": harness._die_with_parent})
        try:
            self.driver = webdriver.Chrome(service=self.service, options=options)
        except BaseException:
            self.close()
            raise
        self.driver.set_script_timeout(self.timeout)
        self.size(*DESKTOP)

    @property
    def _pgid(self):
        p = getattr(self.service, "process", None)
        return p.pid if p is not None else None

    def close(self):
        """Quit the browser and chromedriver, kill what is left of their group, remove the profile."""
        pgid = self._pgid
        if pgid is not None:
            _groups.add(pgid)
        try:
            if self.driver is not None:
                self.driver.quit()      # the browser, then chromedriver (service.stop)
            elif self.service is not None and pgid is not None:
                self.service.stop()
        except Exception:  # noqa: BLE001 -- the kill below ends them anyway
            pass
        self.driver = None
        if pgid is not None:
            _kill_group(pgid)
            try:
                self.service.process.wait(5)
            except Exception:  # noqa: BLE001
                pass
        if not self._log.closed:
            self._log.close()
        shutil.rmtree(self.profile, ignore_errors=True)

    # --- the page ---------------------------------------------------------------

    def get(self, url):
        self.driver.get(url)

    def size(self, width, height, mobile=False):
        """The viewport, exactly (CSS pixels), as a phone (touch, mobile viewport) or not."""
        self.driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", {
            "width": width, "height": height, "deviceScaleFactor": 1, "mobile": mobile})
        self.driver.execute_cdp_cmd("Emulation.setTouchEmulationEnabled", {"enabled": mobile})

    def js(self, script, *args):
        return self.driver.execute_script(script, *args)

    def fetch(self, method, path, headers=None, body=None):
        """fetch() from the page (its cookies, its origin): {"status", "body"}."""
        return self.driver.execute_async_script(
            "const [method, path, headers, body, done] = arguments;"
            "fetch(path, {method, headers, body, credentials: 'same-origin'})"
            ".then(async (r) => done({status: r.status, body: await r.text()}))"
            ".catch((e) => done({status: 0, body: String(e)}));",
            method, path, headers or {}, body)

    def wait(self, condition, message="", timeout=None):
        """Wait until condition(driver) is truthy (stale elements count as "not yet")."""
        w = WebDriverWait(self.driver, timeout or self.timeout,
                          ignored_exceptions=(StaleElementReferenceException, NoSuchElementException))
        try:
            return w.until(condition)
        except TimeoutException:
            raise AssertionError("timed out after %s s: %s; page text:\n%s\nconsole:\n%s"
                                 % (timeout or self.timeout, message, self.text("body"), self.console()))

    def find(self, css):
        return self.driver.find_elements(By.CSS_SELECTOR, css)

    def text(self, css):
        """The visible text of the elements that match css, joined by new lines."""
        try:
            return "\n".join(e.text for e in self.find(css))
        except StaleElementReferenceException:
            return ""

    def wait_text(self, css, text, timeout=None):
        """Wait until an element matching css shows text; returns all the text it shows.  (Read
        inside the wait: a view re-drawn in between is looked up again.)"""
        return self.wait_attrs(css, text, timeout=timeout)[0]

    def wait_attrs(self, css, text, *names, timeout=None):
        """Wait until an element matching css shows text; returns (its text, attribute values)."""
        def shown(d):
            for e in d.find_elements(By.CSS_SELECTOR, css):
                t = e.text
                if text in t:
                    return (t,) + tuple(e.get_attribute(n) for n in names)
            return None
        return self.wait(shown, "no %s showing %r" % (css, text), timeout)

    def wait_gone(self, css, timeout=None):
        self.wait(lambda d: not d.find_elements(By.CSS_SELECTOR, css), "%s still there" % css, timeout)

    def click(self, css, within=None, timeout=None):
        """Click the first visible element matching css (inside the element within, when given);
        a view re-drawn in between is looked up again."""
        def clicked(d):
            root = within if within is not None else d
            for e in root.find_elements(By.CSS_SELECTOR, css):
                if e.is_displayed() and e.is_enabled():
                    e.click()
                    return True
            return False
        self.wait(clicked, "nothing to click at %s" % css, timeout)

    def alert(self, timeout=None):
        """Wait for a dialog (alert or confirm) and return it."""
        return self.wait(EC.alert_is_present(), "no dialog opened", timeout)

    def no_alert(self):
        """True when no dialog is open."""
        try:
            self.driver.switch_to.alert.text  # noqa: B018
            return False
        except NoAlertPresentException:
            return True

    def console(self):
        """Everything the browser console said so far, one line each."""
        try:
            self._console += ["%s %s" % (e["level"], e["message"]) for e in self.driver.get_log("browser")]
        except Exception:  # noqa: BLE001 -- a browser gone: what we have
            pass
        return "\n".join(self._console)

    def csp_violations(self):
        """Console lines about something the Content-Security-Policy refused."""
        return [line for line in self.console().splitlines() if "Content Security Policy" in line]

    def horizontal_overflow(self):
        """How many CSS pixels the page is wider than the viewport (0: no horizontal scroll)."""
        return self.js("return document.documentElement.scrollWidth - document.documentElement.clientWidth")

    def screenshot(self, name, full=False):
        """ARTIFACTS/<name>.png: the viewport, or with full=True the whole page at the viewport's
        width; returns the path."""
        os.makedirs(ARTIFACTS, exist_ok=True)
        path = os.path.join(ARTIFACTS, name + ".png")
        data = self.driver.execute_cdp_cmd("Page.captureScreenshot", {
            "format": "png", "captureBeyondViewport": full})["data"]
        with open(path, "wb") as f:
            f.write(base64.b64decode(data))
        return path


class BrowserMixin:
    """For a BridgeTestCase: self.browser() opens one Browser, closed by a cleanup."""

    def browser(self):
        b = Browser()
        self.addCleanup(b.close)
        return b
