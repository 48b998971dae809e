-- wrk script for tests/bench: POST a realistic Chatra chatFragment webhook (about 1 KB), every
-- request with a message id of its own, so that the store can be checked against wrk's count.
--
--   wrk -t2 -c32 -d10s --latency -s chatra_fragment.lua URL -- CONVERSATIONS TAG
--
-- CONVERSATIONS: how many distinct visitors (Chatra client ids) the requests cycle through.
-- TAG: prefix of every message id ("TAG-<thread>-<n>") and client id ("TAG-client-<k>").
-- done() prints one line "WRK_JSON {...}" with the counts and latency percentiles (microseconds),
-- and one "WRK_SAMPLE <body>" with a body as the requests carried it.

local next_thread = 0

function setup(thread)
   next_thread = next_thread + 1
   thread:set("thread_no", next_thread)
end

-- The body: a chatFragment as Chatra sends it while a chat runs; client details as a shop's
-- site sets them (integration data, pages, device).  %s placeholders: client id, chat id,
-- e-mail, message id, created-at (ms).
local template = [[
{"eventName":"chatFragment","client":{"id":"%s","chatId":"%s","displayedName":"Green Owl",]] ..
[["name":"Maria Lopez","email":"%s","phone":"+34 600 123 456",]] ..
[["notes":"Asked about delivery to Madrid last week; prefers e-mail.",]] ..
[["info":{"plan":"trial","userId":"u-1042","cartTotal":"129.90 EUR","segment":"returning"},]] ..
[["basicInfo":{"city":"Madrid","country":"Spain","browser":"Chrome 126","os":"Windows 10",]] ..
[["device":"desktop","ip":"203.0.113.57","referrer":"https://www.google.com/search?q=blue+kettle",]] ..
[["pages":[{"url":"https://shop.example.org/","title":"Example Shop"},]] ..
[[{"url":"https://shop.example.org/kettles/blue-kettle-1-7l","title":"Blue kettle 1.7 l"},]] ..
[[{"url":"https://shop.example.org/delivery","title":"Delivery and returns"}]}},]] ..
[["messages":[{"id":"%s","type":"client",]] ..
[["text":"Hello! Is the blue kettle in stock, and how long does delivery to Madrid take? ]] ..
[[I would need it before Friday, if possible with a gift wrap.","createdAt":%s}],"agents":[]}]]

function init(args)
   conversations = tonumber(args[1]) or 1
   tag = args[2] or "bench"
   counter = 0
   base_ms = os.time() * 1000
   wrk.method = "POST"
   wrk.headers["Content-Type"] = "application/json"
end

function request()
   counter = counter + 1
   -- Threads start at different visitors and then go round all of them.
   local k = (counter + thread_no * 7919) % conversations
   local client = string.format("%s-client-%d", tag, k)
   local body = string.format(template, client, client .. "-chat",
                              string.format("visitor%d@%s.example.org", k, tag),
                              string.format("%s-%d-%d", tag, thread_no, counter),
                              string.format("%d", base_ms + counter))
   return wrk.format(nil, nil, nil, body)
end

function done(summary, latency, requests)
   local e = summary.errors
   local sample = string.format(template, "bench-client-999", "bench-client-999-chat",
                                "visitor999@bench.example.org", "bench-1-100000", "1700000000000")
   io.write(string.format(
      'WRK_JSON {"body_bytes":%d,"requests":%d,"duration_us":%d,"bytes":%d,"connect_errors":%d,"read_errors":%d,' ..
      '"write_errors":%d,"status_errors":%d,"timeouts":%d,"p50_us":%d,"p90_us":%d,"p99_us":%d,' ..
      '"mean_us":%.1f,"max_us":%d}\n',
      #sample, summary.requests, summary.duration, summary.bytes, e.connect, e.read, e.write, e.status,
      e.timeout, latency:percentile(50), latency:percentile(90), latency:percentile(99),
      latency.mean, latency.max))
   -- The body itself (one line), for the door's steps timed alone (door_steps.c).
   io.write("WRK_SAMPLE " .. sample .. "\n")
end
