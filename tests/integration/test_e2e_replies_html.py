"""Issue 10, point 3: a reply keeps what the employee wrote.

Planfix comments are HTML.  The text that reaches the chat keeps link addresses ("text (address)",
or the address alone when it is the text), paragraphs and line breaks, list items as lines, and
every entity decoded (bridge/html_text.c, on libxml2's HTML parser).  The rules in detail are in
tests/unit/test_html_text.c; these tests show them end to end, as the visitor sees them.
"""

import os
import sys
import unittest

# The helpers live in tests/lib (see the docstring of tests/lib/harness.py).
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir, "lib"))

from harness import chat_event, msg  # noqa: E402
from e2e import ANNA_AGENT, calls  # noqa: E402
from test_e2e_replies import ReplyCase  # noqa: E402

# A reply as Planfix's editor stores it: paragraphs, links, a list, named and numeric entities.
PLANFIX_REPLY = (
    "<p>Hello Maria,</p>\n"
    "<p>the kettle is in stock &mdash; see <a href=\"https://shop.example/kettles/blue?ref=chat&amp;lang=en\">"
    "the <b>blue</b> kettle</a> or the whole range at "
    "<a href=\"https://shop.example/kettles/\">https://shop.example/kettles</a>.</p>\n"
    "<p>Delivery options:</p>\n"
    "<ul>\n"
    "  <li>courier, 2&nbsp;days &laquo;door to door&raquo;</li>\n"
    "  <li>pick-up &amp; pay at the shop</li>\n"
    "</ul>\n"
    "<p>Questions? Write to <a href=\"mailto:anna@shop.example\">Anna</a> &#8212; 5 &lt; 7 &#x1F600;<br>"
    "Best regards,<br>Anna</p>"
)
PLANFIX_REPLY_TEXT = (
    "Hello Maria,\n"
    "\n"
    "the kettle is in stock \u2014 see the blue kettle (https://shop.example/kettles/blue?ref=chat&lang=en) "
    "or the whole range at https://shop.example/kettles/.\n"
    "\n"
    "Delivery options:\n"
    "\n"
    "- courier, 2 days \u00abdoor to door\u00bb\n"
    "- pick-up & pay at the shop\n"
    "\n"
    "Questions? Write to Anna (anna@shop.example) \u2014 5 < 7 \U0001F600\n"
    "Best regards,\n"
    "Anna"
)


class TestReplyText(ReplyCase):
    def reply(self, html):
        self.fakes.employee_comment(self.task, owner="user:5", name="Anna", text=html)
        self.planfix_hook()
        [send] = self.wait_chatra(count=len(self.chat_messages()) + 1)[-1:]
        return send["body"]

    def test_links_entities_paragraphs_and_a_list_reach_the_chat(self):
        body = self.reply(PLANFIX_REPLY)
        self.assertEqual(body, {"clientId": "client-1", "text": PLANFIX_REPLY_TEXT, "agentId": ANNA_AGENT})
        self.assertEqual([m["text"] for m in self.fakes.chatra_messages("client-1")], [PLANFIX_REPLY_TEXT])
        self.wait_idle()
        # Chatra reports the reply in the next fragment, as Anna's message with the text as sent:
        # it is known as the reply and not mirrored back into the task.
        before = len(self.fakes.planfix_requests())
        self.post(chat_event("chatFragment", "client-1", [
            msg("a7", PLANFIX_REPLY_TEXT, type="agent", agent_id=ANNA_AGENT),
            msg("m7", "Courier, please"),
        ], email="maria@example.org"))
        [post] = self.wait_comment_posts(self.task, 1)
        self.assert_quiet()
        self.assertEqual(calls(self.fakes.planfix_requests()[before:]), ["POST /rest/task/%d/comments/" % self.task])
        self.assertEqual(post["body"]["description"], "Courier, please")

    def test_lines_as_the_browser_editor_writes_them(self):
        # Chrome's editor: the first line bare, a <div> per line, <div><br></div> for a blank one;
        # an ordered list with a nested one; a link whose text is the address.
        html = ("Здравствуйте, Мария!<div>Заказ&nbsp;№&nbsp;12 готов.</div><div><br></div>"
                "<div>Как забрать:</div><ol><li>оплатите на "
                "<a href=\"https://shop.example/pay/12\">https://shop.example/pay/12</a></li>"
                "<li>приходите:<ul><li>пн&ndash;пт 9&ndash;18</li><li>сб 10&ndash;14</li></ul></li></ol>"
                "<div>Телефон: <a href=\"tel:+74950000000\">+7 495 000-00-00</a></div>")
        self.assertEqual(self.reply(html)["text"],
                         "Здравствуйте, Мария!\n"
                         "Заказ № 12 готов.\n"
                         "\n"
                         "Как забрать:\n"
                         "1. оплатите на https://shop.example/pay/12\n"
                         "2. приходите:\n"
                         "   - пн\u2013пт 9\u201318\n"
                         "   - сб 10\u201314\n"
                         "Телефон: +7 495 000-00-00")

    def test_what_the_visitor_cannot_use_is_left_out(self):
        # Scripts and styles pasted with a mail, a relative link, an image without alt text.
        html = ("<style>p { color: red }</style><script>track()</script>"
                "<p>See <a href=\"/task/17\">the related task</a> <img src=\"/i/logo.png\"> and "
                "<a href=\"https://shop.example/faq\"><img src=\"/i/faq.png\" alt=\"our FAQ\"></a></p>")
        self.assertEqual(self.reply(html)["text"], "See the related task and our FAQ (https://shop.example/faq)")


if __name__ == "__main__":
    unittest.main()
