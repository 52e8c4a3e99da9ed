#!lua name=sserelay
-- sserelay's durable publish, a Redis Function library (Redis 7).
--
-- Loaded by the daemon with --history redis (FUNCTION LOAD REPLACE when it
-- is missing or of another version; on every primary of a cluster).  The
-- daemon fills in the @...@ values below before loading.
--
--   FCALL sserelay_publish 1 <channel> <payload>
--
-- Atomically: takes the channel's next offset, appends the payload to the
-- channel's history stream (trimmed to @SIZE@ entries, gone @TTL@ s after
-- the last publish), and publishes it with its position to the channel, so
-- that every sserelay instance sees the same position for the same message.
-- Returns "<epoch>:<offset>".
--
-- Keys: sserelay:<c>:m (a hash: e, the channel's epoch; o, its last
-- offset) and sserelay:<c>:s (the stream, entry id "<offset>-0", fields d
-- the payload and t the publish time in µs), where <c> is the channel with
-- its hash tag kept, or wrapped in {} when it has none, so that both keys
-- and the channel share one cluster slot.  The epoch is new whenever the
-- meta hash is: after Redis lost its data, or after @META_TTL@ s without a
-- publish, so a position from before can be told apart.

local VERSION = '@VERSION@'
local SIZE = @SIZE@
local TTL = @TTL@
local META_TTL = @META_TTL@
local PUBLISH = '@PUBLISH@'
local MAGIC = '\0sr1:'

-- the slot of a name: the first {...} with something in it, else it all
local function keys_of(ch)
	local open = string.find(ch, '{', 1, true)
	if open then
		local close = string.find(ch, '}', open + 1, true)
		if close and close > open + 1 then
			return 'sserelay:' .. ch .. ':m', 'sserelay:' .. ch .. ':s'
		end
	end
	if string.find(ch, '}', 1, true) then
		return nil
	end
	return 'sserelay:{' .. ch .. '}:m', 'sserelay:{' .. ch .. '}:s'
end

-- in microseconds: a node runs one call at a time, each longer than 1 µs,
-- so its messages are in publish order by it, whatever their channel
local function now_us()
	local t = redis.call('TIME')
	return t[1] .. string.format('%06d', tonumber(t[2]))
end

local function publish(keys, args)
	local ch, payload = keys[1], args[1]
	if ch == nil or payload == nil or #args ~= 1 then
		return redis.error_reply('ERR usage: FCALL sserelay_publish 1 ' ..
		    '<channel> <payload>')
	end
	local mkey, skey = keys_of(ch)
	if mkey == nil then
		return redis.error_reply('ERR sserelay: a channel with } but ' ..
		    'no {tag} has no slot of its own for its history')
	end
	local e = redis.call('HGET', mkey, 'e')
	if not e then
		local t = redis.call('TIME')
		local us = tonumber(t[1]) * 1000000 + tonumber(t[2])
		e = string.format('%x', us % 4294967296)
		redis.call('HSET', mkey, 'e', e)
	end
	local o = redis.call('HINCRBY', mkey, 'o', 1)
	if SIZE > 0 then
		redis.call('XADD', skey, 'MAXLEN', SIZE, o .. '-0', 'd', payload,
		    't', now_us())
		redis.call('EXPIRE', skey, TTL)
	end
	redis.call('EXPIRE', mkey, META_TTL)
	redis.call(PUBLISH, ch, MAGIC .. e .. ':' .. o .. ':' .. payload)
	return e .. ':' .. o
end

-- FCALL_RO sserelay_read 1 <channel> after <epoch> <offset>
-- FCALL_RO sserelay_read 1 <channel> last - <count>
--   after: the entries after <offset> if <epoch> is still the channel's
--   (epoch "*": whatever it is, as for a position taken before the first
--   message); last: the <count> newest.  Answers {status, epoch, offset,
--   offset1, time1, data1, ...}: status "ok", "epoch" (not the channel's
--   epoch, or no history at all), "trimmed" (entries after <offset> are
--   gone), "ahead" (an offset never given).  Epoch "" and offset 0: the
--   channel has no history.
local function read(keys, args)
	local ch, mode = keys[1], args[1]
	local mkey, skey = keys_of(ch)
	if mkey == nil or (mode ~= 'after' and mode ~= 'last') then
		return redis.error_reply('ERR usage: FCALL_RO sserelay_read 1 ' ..
		    '<channel> after|last <epoch> <offset> <count>')
	end
	local e = redis.call('HGET', mkey, 'e')
	local o = tonumber(redis.call('HGET', mkey, 'o') or '0')
	if not e then
		return {args[2] == '*' and 'ok' or 'epoch', '', '0'}
	end
	local out = {'ok', e, tostring(o)}
	local entries
	if mode == 'last' then
		local n = tonumber(args[3]) or 0
		if n <= 0 then
			return out
		end
		entries = redis.call('XREVRANGE', skey, '+', '-', 'COUNT', n)
		local rev = {}
		for i = #entries, 1, -1 do
			rev[#rev + 1] = entries[i]
		end
		entries = rev
	else
		local after = tonumber(args[3]) or -1
		if args[2] ~= e and args[2] ~= '*' then
			out[1] = 'epoch'
			return out
		end
		if after > o then
			out[1] = 'ahead'
			return out
		end
		if after == o then
			return out
		end
		entries = redis.call('XRANGE', skey, '(' .. after .. '-0', '+')
		local first = entries[1] and tonumber(string.match(entries[1][1],
		    '^(%d+)'))
		if first ~= after + 1 then
			out[1] = 'trimmed'
			return out
		end
	end
	for _, en in ipairs(entries) do
		local f = en[2]
		local d, t = '', '0'
		for i = 1, #f, 2 do
			if f[i] == 'd' then d = f[i + 1] end
			if f[i] == 't' then t = f[i + 1] end
		end
		out[#out + 1] = string.match(en[1], '^(%d+)')
		out[#out + 1] = t
		out[#out + 1] = d
	end
	return out
end

redis.register_function('sserelay_publish', publish)
redis.register_function{function_name = 'sserelay_read', callback = read,
    flags = {'no-writes'}}
redis.register_function{function_name = 'sserelay_version',
    callback = function() return VERSION end, flags = {'no-writes'}}
