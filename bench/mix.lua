-- wrk script of bench/run.sh: cycles through a file of prepared requests (bench/requests.py) and
-- counts the answers that are not 2xx.
--
-- Environment:
--   BENCH_REQUESTS       the requests file: METHOD <tab> TARGET <tab> BODY, one a line
--   BENCH_AUTHORIZATION  optional Authorization header value (never printed)
--   BENCH_OUT            where done() writes its JSON summary
--
-- Every request carries `Accept-Encoding: gzip`, as Grafana's do.
--
-- Every thread starts at its own place in the file, so threads do not move in lockstep.

local threads = {}

function setup(thread)
   thread:set("id", #threads + 1)
   table.insert(threads, thread)
end

local requests = {}
local next_index = 0

non2xx = 0
status_4xx = 0
status_5xx = 0
status_other = 0
first_bad = ""

function init(args)
   -- Like Grafana, accept a gzip answer: Prometheus compresses, proxies pass it through.
   local headers_base = { ["Accept-Encoding"] = "gzip" }
   local auth = os.getenv("BENCH_AUTHORIZATION")
   if auth and auth ~= "" then
      headers_base["Authorization"] = auth
   end
   local file = assert(os.getenv("BENCH_REQUESTS"), "BENCH_REQUESTS is not set")
   for line in io.lines(file) do
      local method, target, body = line:match("^([A-Z]+)\t([^\t]+)\t?(.*)$")
      if method then
         local headers = {}
         for k, v in pairs(headers_base) do headers[k] = v end
         if body == "" then
            body = nil
         else
            headers["Content-Type"] = "application/x-www-form-urlencoded"
         end
         table.insert(requests, wrk.format(method, target, headers, body))
      end
   end
   assert(#requests > 0, "no requests in " .. file)
   next_index = ((id or 1) * 7) % #requests
end

function request()
   next_index = next_index % #requests + 1
   return requests[next_index]
end

function response(status, headers, body)
   if status < 200 or status > 299 then
      non2xx = non2xx + 1
      if status >= 500 then
         status_5xx = status_5xx + 1
      elseif status >= 400 then
         status_4xx = status_4xx + 1
      else
         status_other = status_other + 1
      end
      if first_bad == "" then
         first_bad = tostring(status)
      end
   end
end

function done(summary, latency, requests_done)
   local bad, s4, s5, other, first = 0, 0, 0, 0, ""
   for _, thread in ipairs(threads) do
      bad = bad + thread:get("non2xx")
      s4 = s4 + thread:get("status_4xx")
      s5 = s5 + thread:get("status_5xx")
      other = other + thread:get("status_other")
      if first == "" then first = thread:get("first_bad") end
   end
   local e = summary.errors
   local out = string.format(
      '{"requests":%d,"duration_us":%d,"bytes":%d,' ..
      '"p50_us":%d,"p90_us":%d,"p99_us":%d,"mean_us":%.1f,"max_us":%d,' ..
      '"non2xx":%d,"status_4xx":%d,"status_5xx":%d,"status_other":%d,"first_bad":"%s",' ..
      '"err_connect":%d,"err_read":%d,"err_write":%d,"err_timeout":%d}\n',
      summary.requests, summary.duration, summary.bytes,
      latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.mean, latency.max,
      bad, s4, s5, other, first,
      e.connect, e.read, e.write, e.timeout)
   local path = os.getenv("BENCH_OUT")
   if path and path ~= "" then
      local f = assert(io.open(path, "w"))
      f:write(out)
      f:close()
   else
      io.write(out)
   end
end
