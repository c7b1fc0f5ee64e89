-- wrk request script used by bench/wrkrun.py (do not hard-code requests here).
-- The request comes from environment variables set by the harness:
--   BENCH_METHOD    HTTP method (default POST)
--   BENCH_BODY_HEX  request body, hex-encoded so any bytes (UTF-8) survive
--   BENCH_HEADERS   "Name: value" lines separated by newlines
-- wrk derives Content-Length from the byte length of wrk.body.

local function unhex(s)
  return (s:gsub("%x%x", function(h) return string.char(tonumber(h, 16)) end))
end

wrk.method = os.getenv("BENCH_METHOD") or "POST"
wrk.body = unhex(os.getenv("BENCH_BODY_HEX") or "")

for line in (os.getenv("BENCH_HEADERS") or ""):gmatch("[^\n]+") do
  local name, value = line:match("^([^:]+):%s*(.-)%s*$")
  if name then
    wrk.headers[name] = value
  end
end
