-- wrk script of the cluster bench's sends (bench/cluster.py): the request comes from post.lua
-- (BENCH_POST_LUA is its path); this sends it to each path of BENCH_PATHS (one a line) in
-- turn, so the sends go round-robin over several sessions, and counts the answers per HTTP
-- status, printed as "Status <code>: <count>" lines at the end (as flood.lua does).

dofile(os.getenv("BENCH_POST_LUA"))

local requests = {}
local turn = 0
local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  for path in (os.getenv("BENCH_PATHS") or ""):gmatch("[^\n]+") do
    table.insert(requests, wrk.format(nil, path))
  end
end

function request()
  turn = turn % #requests + 1
  return requests[turn]
end

statuses = {}

function response(status, headers, body)
  statuses[status] = (statuses[status] or 0) + 1
end

function done(summary, latency, requests)
  for _, thread in ipairs(threads) do
    for status, count in pairs(thread:get("statuses")) do
      io.write(string.format("Status %d: %d\n", status, count))
    end
  end
end
