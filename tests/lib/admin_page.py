"""The admin page in a browser: the base class of tests/integration/test_browser_admin*.py.

AdminPageCase is admin.py's AdminCase (a bridge with `admin.token` set, the API with a cookie or
Bearer) with a headless Chromium (browser.py) that opens /admin/, logs in, goes to a view and
waits for it, and shoots each view at desktop and phone width into the build tree's
artifacts/admin/.
"""

import browser
from admin import ADMIN_TOKEN, AdminCase
from browser import BrowserMixin, DESKTOP, PHONE

NARROW = (360, 740)


class AdminPageCase(BrowserMixin, AdminCase):
    """AdminCase with a browser on the admin page (skipped without one, outside CI)."""

    def setUp(self):
        browser.require()
        super().setUp()

    # --- the page ----------------------------------------------------------------

    def open_page(self):
        """A new browser on /admin/ (not logged in)."""
        b = self.browser()
        b.get(self.bridge.url + "/admin/")
        return b

    def log_in(self, b, token=ADMIN_TOKEN):
        """Type token into the login form and send it (the outcome is the caller's to wait for)."""
        b.wait(lambda d: b.find("#token") and b.find("#token")[0].is_displayed(), "no login form")
        field = b.find("#token")[0]
        field.clear()
        field.send_keys(token)
        b.click("#login-form button[type=submit]")

    def logged_in(self, route="#/", view="overview"):
        """A new browser, logged in, on route (its view loaded), with the WebSocket live."""
        b = self.open_page()
        self.log_in(b)
        self.wait_view(b, "overview")
        if route != "#/":
            self.go(b, route, view)
        self.wait_live(b)
        return b

    def go(self, b, route, view):
        """Follow a link of the page's own (a hash route) and wait for its view."""
        b.js("location.hash = arguments[0]", route)
        return self.wait_view(b, view)

    def wait_view(self, b, name):
        """Wait until the view name is in front and has loaded; returns its element."""
        css = "section.view[data-view='%s'][data-loaded]" % name
        return b.wait(lambda d: (lambda found: found[0] if found and found[0].is_displayed() else None)(b.find(css)),
                      "the %s view did not load" % name)

    def wait_live(self, b):
        b.wait(lambda d: b.find("#live")[0].get_attribute("data-state") == "live" or None,
               "the live indicator does not say live (WebSocket /admin/ws)")
        self.assertEqual(b.text("#live"), "● live")

    def shoot(self, b, name):
        """Screenshots of what is shown at desktop and phone size, the screen and the whole page
        (artifacts/admin/<name>-{desktop,phone}[-full].png); on a phone, 390 or 360 px wide, the
        page must not scroll sideways."""
        b.screenshot(name + "-desktop")
        b.screenshot(name + "-desktop-full", full=True)
        b.size(*PHONE, mobile=True)
        try:
            self.assertEqual(b.horizontal_overflow(), 0, "the %s page scrolls sideways at %d px" % (name, PHONE[0]))
            b.screenshot(name + "-phone")
            b.screenshot(name + "-phone-full", full=True)
            # The narrowest phone the page is made for.
            b.size(NARROW[0], PHONE[1], mobile=True)
            self.assertEqual(b.horizontal_overflow(), 0, "the %s page scrolls sideways at %d px" % (name, NARROW[0]))
        finally:
            b.size(*DESKTOP)

    def assert_no_dialog(self, b):
        self.assertTrue(b.no_alert(), "a dialog opened (an injected script ran?)")

    def assert_no_csp_violations(self, b):
        """Nothing the page does needs more than its CSP allows (no inline script or style)."""
        self.assertEqual(b.csp_violations(), [])
