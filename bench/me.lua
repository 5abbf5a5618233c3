-- wrk script: GET /v1/me with a session token (SESSION).
local session = os.getenv("SESSION")
request = function()
  return wrk.format("GET", "/v1/me", { ["Authorization"] = "Bearer " .. session })
end
-- p99.9, which wrk's --latency table does not print.
done = function(summary, latency, requests)
  io.write(string.format("P99.9 %.2fms\n", latency:percentile(99.9) / 1000))
end
