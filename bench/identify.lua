-- wrk script: POST /v1/identify with pre-signed bodies, one per line of BODIES.
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
local errors = 0
response = function(status, headers, body)
  if status ~= 200 then
    errors = errors + 1
    if errors < 5 then io.stderr:write("non-200: " .. status .. " " .. body .. "\n") end
  end
end
