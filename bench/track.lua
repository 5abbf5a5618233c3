-- wrk script: POST /v1/track with a session token (SESSION).
local session = os.getenv("SESSION")
local i = 0
request = function()
  i = i + 1
  return wrk.format("POST", "/v1/track", {
    ["Authorization"] = "Bearer " .. session,
    ["Content-Type"] = "application/json",
  }, '{"event":"page_view","properties":{"n":' .. i .. '}}')
end
-- p99.9, which wrk's --latency table does not print.
done = function(summary, latency, requests)
  io.write(string.format("P99.9 %.2fms\n", latency:percentile(99.9) / 1000))
end
