-- wrk script: POST /v1/identify with pre-signed bodies, one per line of BODIES.
-- No response hook (it would make wrk parse every answer in Lua): wrk reports
-- "Non-2xx or 3xx responses" itself.
local bodies = {}
local path = os.getenv("BODIES")
for line in io.lines(path) do
  bodies[#bodies + 1] = line
end
local pk = os.getenv("PK")
local i = 0
math.randomseed(os.time())
request = function()
  i = i + 1
  local body = bodies[(i * 7919 + math.random(1, #bodies)) % #bodies + 1]
  return wrk.format("POST", "/v1/identify", {
    ["Authorization"] = "Bearer " .. pk,
    ["Content-Type"] = "application/json",
  }, body)
end
-- p99.9, which wrk's --latency table does not print.
done = function(summary, latency, requests)
  io.write(string.format("P99.9 %.2fms\n", latency:percentile(99.9) / 1000))
end
