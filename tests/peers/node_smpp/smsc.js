// An SMSC built on the npm `smpp` package (node-smpp): a peer the bridge's authors did not write.
//
// Driven by tests/peers/node_smpp.py over stdin/stdout, one JSON object per line.
// Out: {"event": "listening", "port": N} once; {"event": "pdu", "pdu": {...}} for every PDU
// the bridge sends (requests and responses, decoded by node-smpp: short_message as text and
// UDH); {"event": "reply", "id": ..., "pdu": {...}} when a request we sent got its response;
// {"event": "sent", "id": ..., "sequence_number": N} when a request left; "bind", "close".
// In: {"id": ..., "op": "deliver_sm" | "alert_notification" | "enquire_link", "params": {...}}
// sends that request on the newest session; {"op": "set", "receipts": bool} changes whether
// submit_sm with registered_delivery gets a receipt; {"op": "drop"} closes every session.
// short_message in params: a string (node-smpp encodes it per data_coding), or
// {"hex": "..."} for raw octets, or {"udh_hex": "...", "message": "..."}; any other
// parameter given as {"hex": "..."} (a TLV such as message_payload) is those octets.
'use strict';

const readline = require('readline');
const smpp = require('smpp');

const sessions = [];
const state = { receipts: true, nextId: 7001 };

function emit(obj) {
  process.stdout.write(JSON.stringify(obj) + '\n');
}

function plain(value) {
  if (Buffer.isBuffer(value)) return { hex: value.toString('hex') };
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

function shortMessage(value) {
  if (value && typeof value === 'object') {
    if ('hex' in value) return Buffer.from(value.hex, 'hex');
    if ('udh_hex' in value) return { udh: Buffer.from(value.udh_hex, 'hex'), message: value.message };
  }
  return value;
}

function receiptFor(pdu, id) {
  const text = 'id:' + id + ' sub:001 dlvrd:001 submit date:2611221200 done date:2611221201 ' +
    'stat:DELIVRD err:000 text:';
  return {
    source_addr_ton: pdu.dest_addr_ton,
    source_addr_npi: pdu.dest_addr_npi,
    source_addr: pdu.destination_addr,
    dest_addr_ton: pdu.source_addr_ton,
    dest_addr_npi: pdu.source_addr_npi,
    destination_addr: pdu.source_addr,
    esm_class: 0x04,
    data_coding: 0,
    short_message: text,
    receipted_message_id: id,
    message_state: 2,
  };
}

const server = smpp.createServer(function (session) {
  sessions.push(session);
  session.on('error', function (err) {
    emit({ event: 'error', message: String(err) });
  });
  session.on('close', function () {
    const i = sessions.indexOf(session);
    if (i >= 0) sessions.splice(i, 1);
    emit({ event: 'close' });
  });
  session.on('pdu', function (pdu) {
    emit({ event: 'pdu', pdu: describe(pdu) });
  });
  for (const command of ['bind_transceiver', 'bind_transmitter', 'bind_receiver']) {
    session.on(command, function (pdu) {
      session.send(pdu.response({ system_id: 'node-smsc' }));
      emit({ event: 'bind', command: command, system_id: pdu.system_id });
    });
  }
  session.on('enquire_link', function (pdu) {
    session.send(pdu.response());
  });
  session.on('unbind', function (pdu) {
    session.send(pdu.response());
    session.close();
  });
  session.on('submit_sm', function (pdu) {
    const id = String(state.nextId++);
    session.send(pdu.response({ message_id: id }));
    if (state.receipts && (pdu.registered_delivery & 1)) {
      session.deliver_sm(receiptFor(pdu, id));
    }
  });
});

server.listen(0, '127.0.0.1', function () {
  emit({ event: 'listening', port: server.address().port });
});

function newest() {
  return sessions.length ? sessions[sessions.length - 1] : null;
}

readline.createInterface({ input: process.stdin }).on('line', function (line) {
  let cmd;
  try {
    cmd = JSON.parse(line);
  } catch (err) {
    emit({ event: 'error', message: 'bad command: ' + line });
    return;
  }
  if (cmd.op === 'set') {
    if ('receipts' in cmd) state.receipts = Boolean(cmd.receipts);
    emit({ event: 'done', id: cmd.id });
    return;
  }
  if (cmd.op === 'drop') {
    for (const s of sessions.slice()) s.destroy();
    emit({ event: 'done', id: cmd.id });
    return;
  }
  const session = newest();
  if (!session || typeof session[cmd.op] !== 'function') {
    emit({ event: 'error', id: cmd.id, message: 'no session for ' + cmd.op });
    return;
  }
  const params = Object.assign({}, cmd.params || {});
  for (const key of Object.keys(params)) {
    const value = params[key];
    if (key === 'short_message') params[key] = shortMessage(value);
    else if (value && typeof value === 'object' && 'hex' in value) {
      params[key] = Buffer.from(value.hex, 'hex');
    }
  }
  session[cmd.op](
    params,
    function (resp) {
      emit({ event: 'reply', id: cmd.id, pdu: describe(resp) });
    },
    function (sent) {
      emit({ event: 'sent', id: cmd.id, sequence_number: sent.sequence_number });
    }
  );
});

process.stdin.on('end', function () {
  for (const s of sessions.slice()) s.destroy();
  server.close();
  process.exit(0);
});
