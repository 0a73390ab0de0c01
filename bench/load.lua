-- wrk script for the benchmark (bench/loadgen.py).
-- Arguments after `--`: <method> <body file or "-"> <max requests per thread or 0>.
-- PUT requests carry the file as the body. With a maximum, the thread stops after that many
-- responses and prints BENCHDONE, on which bench/loadgen.py interrupts wrk (wrk itself would
-- wait out its duration). done() prints one JSON line with the numbers loadgen.py reads.

local max_requests = 0
local seen = 0

function init(args)
   wrk.method = args[1] or "GET"
   local path = args[2] or "-"
   if path ~= "-" then
      local f = assert(io.open(path, "rb"))
      wrk.body = f:read("*all")
      f:close()
      wrk.headers["Content-Type"] = "application/octet-stream"
   end
   max_requests = tonumber(args[3] or "0") or 0
end

if tonumber(os.getenv("BENCH_WRK_LIMITED") or "0") == 1 then
   function response(status, headers, body)
      seen = seen + 1
      if max_requests > 0 and seen == max_requests then
         io.write("BENCHDONE\n")
         io.flush()
         wrk.thread:stop()
      end
   end
end

function done(summary, latency, requests)
   local e = summary.errors
   io.write(string.format(
      'BENCHJSON {"requests":%d,"duration_us":%d,"bytes":%d,' ..
      '"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d,' ..
      '"p50_us":%d,"p90_us":%d,"p99_us":%d,"max_us":%d,"mean_us":%.1f}\n',
      summary.requests, summary.duration, summary.bytes,
      e.connect, e.read, e.write, e.status, e.timeout,
      latency:percentile(50), latency:percentile(90), latency:percentile(99),
      latency.max, latency.mean))
end
