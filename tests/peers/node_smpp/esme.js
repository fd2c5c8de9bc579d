// An ESME built on the npm `smpp` package's client (node-smpp): a client the bridge's authors did not write.
//
// Driven by tests/peers/esme_node.py over stdin/stdout, one JSON object per line.
// In (each with an "id", answered by an event with the same "id"):
//   {"op": "bind", "host", "port", "bind_type": "transceiver"|"transmitter"|"receiver",
//    "system_id", "password"}                      -> {"event": "bind", "status": N}
//   {"op": "submit", "source": {addr, ton, npi}, "destination": {addr, ton, npi},
//    "text", "ucs2": bool, "receipt": bool}        -> {"event": "submitted", "results": [{status, message_id}]}
//   {"op": "enquire_link"}                         -> {"event": "enquire_link", "status": N}
//   {"op": "unbind"}                               -> {"event": "unbind", "status": N}
//   {"op": "answer", "status": N}                  -> {"event": "done"}  (deliver_sm_resp status from now on)
// Out, unasked: {"event": "deliver_sm", "pdu": {...}, "answered": N} for every deliver_sm
// (answered after the line is written), {"event": "pdu", "command", "command_status",
// "sequence_number"} for every PDU received, {"event": "close"}, {"event": "error"}.
// Long texts are split here as an application does (UDH 05 00 03, 153 GSM septets or 67
// UTF-16 units per part); node-smpp encodes each part per data_coding (0: GSM 03.38, 8: UCS-2).
'use strict';

const readline = require('readline');
const smpp = require('smpp');

// Keep the octets of short_message as received, before node-smpp decodes them into text.
const decodeFilter = smpp.PDU.prototype._filter;
smpp.PDU.prototype._filter = function (func) {
  if (func === 'decode' && Buffer.isBuffer(this.short_message)) {
    this.raw_short_message = Buffer.from(this.short_message);
  }
  return decodeFilter.call(this, func);
};

const state = { session: null, answer: 0, ref: 0 };

function emit(obj) {
  process.stdout.write(JSON.stringify(obj) + '\n');
}

function plain(value) {
  if (Buffer.isBuffer(value)) return { hex: value.toString('hex') };
  if (value instanceof Date) return value.toISOString();
  if (Array.isArray(value)) return value.map(plain);
  if (value && typeof value === 'object') {
    const out = {};
    for (const key of Object.keys(value)) out[key] = plain(value[key]);
    return out;
  }
  return value;
}

function describe(pdu) {
  const out = {};
  for (const key of Object.keys(pdu)) {
    if (typeof pdu[key] !== 'function') out[key] = plain(pdu[key]);
  }
  return out;
}

function septets(ch) {
  return smpp.encodings.ASCII.encode(ch).length;
}

// The parts of `text`: each at most `limit` units (septets, or UTF-16 code units).
function split(text, ucs2) {
  const single = ucs2 ? 70 : 160;
  const perPart = ucs2 ? 67 : 153;
  const size = ucs2 ? (ch) => ch.length : septets;
  const chars = Array.from(text); // code points: a surrogate pair stays whole
  const total = chars.reduce((n, ch) => n + size(ch), 0);
  if (total <= single) return [text];
  const parts = [];
  let current = '';
  let used = 0;
  for (const ch of chars) {
    if (used + size(ch) > perPart) {
      parts.push(current);
      current = '';
      used = 0;
    }
    current += ch;
    used += size(ch);
  }
  if (current) parts.push(current);
  return parts;
}

function submitAll(session, cmd, done) {
  const parts = split(cmd.text, cmd.ucs2);
  const ref = (state.ref = (state.ref + 1) & 0xff);
  const results = new Array(parts.length);
  let pending = parts.length;
  parts.forEach(function (part, i) {
    const params = {
      source_addr: cmd.source.addr,
      source_addr_ton: cmd.source.ton,
      source_addr_npi: cmd.source.npi,
      destination_addr: cmd.destination.addr,
      dest_addr_ton: cmd.destination.ton,
      dest_addr_npi: cmd.destination.npi,
      data_coding: cmd.ucs2 ? 0x08 : 0x00,
      registered_delivery: cmd.receipt ? 1 : 0,
      esm_class: 0,
      short_message: part,
    };
    if (parts.length > 1) {
      params.esm_class = 0x40;
      params.short_message = {
        udh: Buffer.from([0x05, 0x00, 0x03, ref, parts.length, i + 1]),
        message: part,
      };
    }
    const sent = session.submit_sm(params, function (resp) {
      results[i] = { status: resp.command_status, message_id: resp.message_id || '' };
      if (--pending === 0) done(results);
    });
    if (!sent) {
      results[i] = { status: -1, message_id: '' };
      if (--pending === 0) done(results);
    }
  });
}

function bind(cmd) {
  if (state.session) state.session.destroy();
  const session = smpp.connect({ host: cmd.host, port: cmd.port });
  state.session = session;
  let answered = false;
  session.on('error', function (err) {
    emit({ event: 'error', message: String(err) });
    if (!answered) {
      answered = true;
      emit({ event: 'bind', id: cmd.id, status: -1, message: String(err) });
    }
  });
  session.on('close', function () {
    emit({ event: 'close' });
    if (state.session === session) state.session = null;
    if (!answered) {
      answered = true;
      emit({ event: 'bind', id: cmd.id, status: -1, message: 'closed before bind_resp' });
    }
  });
  session.on('pdu', function (pdu) {
    emit({
      event: 'pdu',
      command: pdu.command,
      command_status: pdu.command_status,
      sequence_number: pdu.sequence_number,
    });
  });
  session.on('deliver_sm', function (pdu) {
    const status = state.answer;
    const out = describe(pdu);
    out.raw_short_message = pdu.raw_short_message ? pdu.raw_short_message.toString('hex') : '';
    emit({ event: 'deliver_sm', pdu: out, answered: status });
    session.send(pdu.response({ command_status: status }));
  });
  session.on('enquire_link', function (pdu) {
    session.send(pdu.response());
  });
  session.on('connect', function () {
    session['bind_' + cmd.bind_type]({ system_id: cmd.system_id, password: cmd.password }, function (resp) {
      answered = true;
      emit({ event: 'bind', id: cmd.id, status: resp.command_status });
    });
  });
}

function request(cmd, op) {
  const session = state.session;
  if (!session) {
    emit({ event: 'error', id: cmd.id, message: 'not bound' });
    return;
  }
  session[op]({}, function (resp) {
    emit({ event: op, id: cmd.id, status: resp.command_status });
  });
}

readline.createInterface({ input: process.stdin }).on('line', function (line) {
  let cmd;
  try {
    cmd = JSON.parse(line);
  } catch (err) {
    emit({ event: 'error', message: 'bad command: ' + line });
    return;
  }
  if (cmd.op === 'bind') {
    bind(cmd);
  } else if (cmd.op === 'submit') {
    if (!state.session) {
      emit({ event: 'error', id: cmd.id, message: 'not bound' });
      return;
    }
    submitAll(state.session, cmd, function (results) {
      emit({ event: 'submitted', id: cmd.id, results: results });
    });
  } else if (cmd.op === 'enquire_link' || cmd.op === 'unbind') {
    request(cmd, cmd.op);
  } else if (cmd.op === 'answer') {
    state.answer = cmd.status;
    emit({ event: 'done', id: cmd.id });
  } else {
    emit({ event: 'error', id: cmd.id, message: 'unknown op ' + cmd.op });
  }
});

process.stdin.on('end', function () {
  if (state.session) state.session.destroy();
  process.exit(0);
});

emit({ event: 'ready' });
