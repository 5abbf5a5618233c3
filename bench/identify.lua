-- wrk script: POST /v1/identify with pre-signed bodies, one per line of BODIES.
-- Each body carries `"visit": 0` among its (unsigned) attributes. With CHANGE=1
-- every request sends a new visit number, so every identify changes the user
-- and is committed; without it the user is unchanged after the first call
-- (the common case: the same user on every page load), which writes nothing.
-- Both runs do the same substitution, so the client costs the same.
-- No response hook (it would make wrk parse every answer in Lua): wrk reports
-- "Non-2xx or 3xx responses" itself.
local bodies = {}
local path = os.getenv("BODIES")
for line in io.lines(path) do
  bodies[#bodies + 1] = line
end
local pk = os.getenv("PK")
local change = os.getenv("CHANGE") == "1"
local i = 0
math.randomseed(os.time())
request = function()
  i = i + 1
  local body = bodies[(i * 7919 + math.random(1, #bodies)) % #bodies + 1]
  local visit = change and i or 0
  body = string.gsub(body, '"visit": 0', '"visit": ' .. visit, 1)
  return wrk.format("POST", "/v1/identify", {
    ["Authorization"] = "Bearer " .. pk,
    ["Content-Type"] = "application/json",
  }, body)
end
-- DELAY_MS (fractional): each connection waits this long after an answer
-- before its next request, for a run at a set rate below the maximum. Rounded
-- up or down at random so the mean delay is DELAY_MS at wrk's 1 ms resolution.
local delay_ms = tonumber(os.getenv("DELAY_MS") or "")
if delay_ms then
  delay = function()
    local base = math.floor(delay_ms)
    if math.random() < delay_ms - base then
      return base + 1
    end
    return base
  end
end
-- p99.9, which wrk's --latency table does not print.
done = function(summary, latency, requests)
  io.write(string.format("P99.9 %.2fms\n", latency:percentile(99.9) / 1000))
end
