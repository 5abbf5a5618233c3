-- wrk script: GET /healthz built per request by a Lua function, so the client
-- does the same kind of per-request work as for the other endpoints and the
-- ceiling is not inflated by a cheaper client.
request = function()
  return wrk.format("GET", "/healthz")
end
-- p99.9, which wrk's --latency table does not print.
done = function(summary, latency, requests)
  io.write(string.format("P99.9 %.2fms\n", latency:percentile(99.9) / 1000))
end
