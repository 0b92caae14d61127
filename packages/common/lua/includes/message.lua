-- The wire format in Lua: writes the same bytes as packages/common/src/tasks/message-codec.ts
-- (a test pins both) and applies the same checks when reading. The bounds are the codec's
-- MESSAGE_LIMITS, handed in as LIMITS when the scripts are built (redis/scripts.ts).

local json_escapes = { ['"'] = '\\"', ['\\'] = '\\\\', ['\b'] = '\\b', ['\f'] = '\\f',
  ['\n'] = '\\n', ['\r'] = '\\r', ['\t'] = '\\t' }

-- A Lua string as JSON.stringify writes it (the input is UTF-8 text).
local function json_string(s)
  return '"' .. string.gsub(s, '[%z\1-\31"\\]', function(c)
    return json_escapes[c] or string.format('\\u%04x', string.byte(c))
  end) .. '"'
end

local function whole(v, min, max)
  return type(v) == 'number' and v == math.floor(v) and v >= min and v <= max
end

-- {"id","message","time","tries","run"} (the simulated type) or {"id","type","tries","run"}, then
-- "timeout_ms" and "max_attempts" when the task has its own.
local function encode_message(m)
  local head
  if m.type == nil then
    head = '{"id":' .. string.format('%d', m.id) .. ',"message":' .. json_string(m.message)
      .. ',"time":' .. string.format('%d', m.time)
  else
    head = '{"id":' .. string.format('%d', m.id) .. ',"type":"' .. m.type .. '"'
  end
  local own = ''
  if m.timeout_ms ~= nil then own = own .. ',"timeout_ms":' .. string.format('%d', m.timeout_ms) end
  if m.max_attempts ~= nil then own = own .. ',"max_attempts":' .. string.format('%d', m.max_attempts) end
  return head .. ',"tries":' .. string.format('%d', m.tries) .. ',"run":' .. string.format('%d', m.run) .. own .. '}'
end

-- The message plus ,"error","failed_at" (the error already cut to its length by the caller).
local function encode_dead_letter(m, err, failed_at)
  return string.sub(encode_message(m), 1, -2) .. ',"error":' .. json_string(err)
    .. ',"failed_at":' .. json_string(failed_at) .. '}'
end

-- `s` cut to at most `max` bytes at a character boundary, marked with … when cut (cutText).
local function cut_text(s, max)
  if #s <= max then return s end
  local e = max - 3
  while e > 0 and string.byte(s, e + 1) >= 0x80 and string.byte(s, e + 1) < 0xC0 do e = e - 1 end
  return string.sub(s, 1, e) .. '\226\128\166'
end

local function encode_invalid_entry(err, raw, failed_at)
  return '{"error":' .. json_string(err) .. ',"raw":' .. json_string(cut_text(raw, LIMITS.max_raw_bytes))
    .. ',"failed_at":' .. json_string(failed_at) .. '}'
end

-- A type's name (TYPE_NAME in the codec): a letter, then letters, digits and _ . : -, at most 64.
local function type_name(t)
  return type(t) == 'string' and #t <= 64 and string.match(t, '^[A-Za-z][A-Za-z0-9_.:%-]*$') ~= nil
end

-- The message in `raw`, or nil and why not (the checks of decodeMessage).
local function decode_message(raw)
  local ok, m = pcall(cjson.decode, raw)
  if not ok then return nil, 'not JSON' end
  if type(m) ~= 'table' or m[1] ~= nil then return nil, 'not a JSON object' end
  if m.run == nil then m.run = 0 end
  if not whole(m.id, 1, 9007199254740991) then return nil, 'id must be a positive integer' end
  if m.type ~= nil and (not type_name(m.type) or m.type == 'simulated') then
    return nil, 'type must be the name of a type other than simulated'
  end
  if m.type == nil then
    if type(m.message) ~= 'string' then return nil, 'message must be a string' end
    if not whole(m.time, 0, LIMITS.max_time_s) then
      return nil, 'time must be a whole number of seconds from 0 to ' .. string.format('%d', LIMITS.max_time_s)
    end
  end
  if not whole(m.tries, 0, LIMITS.max_tries) then
    return nil, 'tries must be a whole number from 0 to ' .. string.format('%d', LIMITS.max_tries)
  end
  if not whole(m.run, 0, LIMITS.max_run) then
    return nil, 'run must be a whole number from 0 to ' .. string.format('%d', LIMITS.max_run)
  end
  if m.timeout_ms ~= nil and not whole(m.timeout_ms, 1, LIMITS.max_timeout_ms) then
    return nil, 'timeout_ms must be a whole number from 1 to ' .. string.format('%d', LIMITS.max_timeout_ms)
  end
  if m.max_attempts ~= nil and not whole(m.max_attempts, 1, LIMITS.max_tries) then
    return nil, 'max_attempts must be a whole number from 1 to ' .. string.format('%d', LIMITS.max_tries)
  end
  -- The fields a message of its kind does not carry are not kept (nor written back).
  if m.type ~= nil then m.message, m.time = nil, nil end
  return m
end
