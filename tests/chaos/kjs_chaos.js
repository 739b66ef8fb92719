// kjs_chaos.js - kafkajs (2.2.4) workloads for the chaos harness (tests/chaos/); each
// writes its history, one JSON object a line, in the format tests/chaos/check.py reads,
// as tests/progs/rdk_chaos.c does for librdkafka.
//
//   node kjs_chaos.js produce BROKERS TOPIC NAME SECONDS RATE HISTORY
//       An idempotent producer (idempotent: true, acks=all, one request in flight)
//       sends the values "NAME.G:0", "NAME.G:1", ... at RATE records/s for SECONDS,
//       value i to partition i % partitions, in one send() of 10 records every
//       10/RATE s (one send() per partition, see groups()). Each value gets an invoke before send(); when send() resolves, an
//       ok with its offset (the partition's base offset plus its place among that
//       partition's records of the call); when it rejects, an info (outcome unknown:
//       kafkajs may have written it before giving up). After a rejection the producer
//       is replaced by a new one (a new producer id: its sequence numbers are no
//       longer trusted) and G, the generation, goes up: each generation is a writer
//       of its own for the checker's reorder property, since a request of the old
//       generation may still land after the new one's.
//   node kjs_chaos.js txn BROKERS TOPIC NAME SECONDS HISTORY
//       A transactional producer (transactionalId NAME) sends transactions of 5 values
//       "NAME:i" over the partitions; every 4th is aborted on purpose (txn fail). A
//       commit that rejects is followed by an abort attempt: fail when it succeeds,
//       info when not even that is known; then a new producer (same transactionalId,
//       which fences the old one).
//   node kjs_chaos.js group BROKERS TOPIC NAME SECONDS HISTORY
//       A member of consumer group "kjs-group" (read_committed, from the beginning,
//       kafkajs' auto-commit every 500 ms; chaos.sh starts two, so partitions move
//       between them at each rebalance) records each record it is given as a read ok
//       with its group, and each commit kafkajs reports done (its commit_offsets
//       event, emitted only when every partition of the OffsetCommit succeeded) as a
//       commit ok per partition: the checker's offsets-back and group-skip judge them.
// Brokers are "host:port,host:port". Exit status: 0 done, 1 error, 2 usage.
'use strict';

const fs = require('fs');
const { Kafka, logLevel } = require('kafkajs');

const BATCH = 10;
const TXN_RECORDS = 5;
const TXN_ABORT_EVERY = 4;
const TIMEOUT_MS = 15000;
const GROUP = 'kjs-group';

const [mode, brokers, topic, name, secondsArg, ...rest] = process.argv.slice(2);
if (!['produce', 'txn', 'group'].includes(mode) || !brokers || !topic || !name || !secondsArg) {
	console.error('usage: node kjs_chaos.js produce|txn|group BROKERS TOPIC NAME SECONDS [RATE] HISTORY');
	process.exit(2);
}
const seconds = Number(secondsArg);
const rate = mode === 'produce' ? Number(rest[0]) : 0;
const historyPath = mode === 'produce' ? rest[1] : rest[0];
if (!historyPath || !(seconds > 0) || (mode === 'produce' && !(rate > 0))) {
	console.error('kjs_chaos: bad arguments');
	process.exit(2);
}
const history = fs.openSync(historyPath, 'a');

function record(ev) {
	fs.writeSync(history, JSON.stringify(Object.assign({ t: Date.now() / 1000, process: name }, ev)) + '\n');
}

const kafka = new Kafka({
	clientId: `kjs-chaos-${name}`,
	brokers: brokers.split(','),
	logLevel: logLevel.NOTHING,
	requestTimeout: TIMEOUT_MS,
	connectionTimeout: 3000,
	retry: { retries: 8, initialRetryTime: 100, maxRetryTime: 2000 },
});

// kafkajs 2.2.4 loses messages from a send() that spans partitions led by several
// brokers when one of them fails and its partitions move to a broker that had already
// answered: sendMessages.js retries only the brokers without a response, so those
// partitions' messages are never sent again, and send() resolves (found here: a
// transaction committed with one of its records missing, seed 41, kill scenario).
// So each send() carries one partition's messages, unless KJS_MULTI=1 asks for the
// spanning sends that show the client's bug.
const multi = process.env.KJS_MULTI === '1';
function groups(msgs) {
	if (multi) return [msgs];
	const by = new Map();
	for (const m of msgs) {
		if (!by.has(m.partition)) by.set(m.partition, []);
		by.get(m.partition).push(m);
	}
	return Array.from(by.values());
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function partitionCount() {
	const admin = kafka.admin();
	await admin.connect();
	try {
		for (;;) {
			try {
				const md = await admin.fetchTopicMetadata({ topics: [topic] });
				const n = md.topics[0].partitions.length;
				if (n > 0) return n;
			} catch (e) {
				// leader moves while the nemesis runs: ask again
			}
			await sleep(200);
		}
	} finally {
		await admin.disconnect().catch(() => {});
	}
}

async function newProducer(opts) {
	for (;;) {
		const p = kafka.producer(Object.assign({ maxInFlightRequests: 1, idempotent: true }, opts));
		try {
			await p.connect();
			return p;
		} catch (e) {
			await p.disconnect().catch(() => {});
			await sleep(500);
		}
	}
}

async function produce(parts, deadline) {
	let gen = 0;
	let producer = await newProducer({});
	let i = 0;
	let sent = 0;
	let unknown = 0;
	const start = Date.now();
	while (Date.now() < deadline) {
		// Paced: value i is due at start + i / rate.
		const due = start + (i * 1000) / rate;
		if (due > Date.now()) await sleep(due - Date.now());
		const msgs = [];
		for (let k = 0; k < BATCH; k++, i++) {
			const value = `${name}.${gen}:${i}`;
			const partition = i % parts;
			msgs.push({ partition, value });
			record({ type: 'invoke', f: 'send', partition, value });
		}
		sent += msgs.length;
		const results = await Promise.allSettled(
			groups(msgs).map((g) => producer.send({ topic, acks: -1, timeout: TIMEOUT_MS, messages: g }))
		);
		let failed = false;
		groups(msgs).forEach((g, n) => {
			const r = results[n];
			if (r.status === 'fulfilled') {
				const base = new Map(r.value.map((m) => [m.partition, Number(m.baseOffset)]));
				const seen = new Map();
				for (const m of g) {
					const k = seen.get(m.partition) || 0;
					seen.set(m.partition, k + 1);
					record({ type: 'ok', f: 'send', partition: m.partition, offset: base.get(m.partition) + k, value: m.value });
				}
			} else {
				const e = r.reason;
				const why = String((e && (e.type || e.name)) || e);
				for (const m of g) record({ type: 'info', f: 'send', partition: m.partition, value: m.value, error: why });
				unknown += g.length;
				failed = true;
			}
		});
		if (failed) {
			await producer.disconnect().catch(() => {});
			gen++;
			producer = await newProducer({});
		}
	}
	await producer.disconnect().catch(() => {});
	console.error(`kjs_chaos: ${name}: ${sent} sent, ${unknown} of unknown outcome, ${gen} producers replaced`);
}

async function txn(parts, deadline) {
	const opts = { transactionalId: name, transactionTimeout: 60000 };
	let producer = await newProducer(opts);
	let i = 0;
	let n = 0;
	let committed = 0;
	while (Date.now() < deadline) {
		const id = `${name}-${n}`;
		const abort = n % TXN_ABORT_EVERY === TXN_ABORT_EVERY - 1;
		n++;
		record({ type: 'invoke', f: 'txn', txn: id });
		let t;
		try {
			t = await producer.transaction();
		} catch (e) {
			record({ type: 'fail', f: 'txn', txn: id, error: String(e.type || e.name || e) });
			await producer.disconnect().catch(() => {});
			producer = await newProducer(opts);
			continue;
		}
		const msgs = [];
		for (let k = 0; k < TXN_RECORDS; k++, i++) {
			const value = `${name}:${i}`;
			msgs.push({ partition: i % parts, value });
			record({ type: 'invoke', f: 'send', partition: i % parts, value, txn: id });
		}
		try {
			for (const g of groups(msgs)) await t.send({ topic, acks: -1, timeout: TIMEOUT_MS, messages: g });
			if (abort) {
				await t.abort();
				record({ type: 'fail', f: 'txn', txn: id });
			} else {
				await t.commit();
				record({ type: 'ok', f: 'txn', txn: id });
				committed++;
			}
		} catch (e) {
			const why = String((e && (e.type || e.name)) || e);
			let outcome = 'info';
			try {
				await t.abort();
				outcome = 'fail';
			} catch (e2) {
				// not even the abort is known: the transaction may have committed
			}
			record({ type: outcome, f: 'txn', txn: id, error: why });
			await producer.disconnect().catch(() => {});
			producer = await newProducer(opts);
		}
	}
	await producer.disconnect().catch(() => {});
	console.error(`kjs_chaos: ${name}: ${n} transactions, ${committed} committed`);
}

async function group(deadline) {
	const consumer = kafka.consumer({
		groupId: GROUP,
		sessionTimeout: 10000,
		heartbeatInterval: 1000,
		maxWaitTimeInMs: 500,
		readUncommitted: false,
	});
	let reads = 0;
	let commits = 0;
	let crashes = 0;
	consumer.on(consumer.events.COMMIT_OFFSETS, ({ payload }) => {
		for (const t of payload.topics) {
			for (const p of t.partitions) {
				record({ type: 'ok', f: 'commit', group: GROUP, partition: Number(p.partition), offset: Number(p.offset) });
				commits++;
			}
		}
	});
	// kafkajs restarts a crashed consumer itself (retry.restartOnFailure).
	consumer.on(consumer.events.CRASH, ({ payload }) => {
		crashes++;
		console.error(`kjs_chaos: ${name}: consumer crashed: ${payload.error && (payload.error.type || payload.error.name)}`);
	});
	for (;;) {
		try {
			await consumer.connect();
			break;
		} catch (e) {
			await sleep(500);
		}
	}
	await consumer.subscribe({ topic, fromBeginning: true });
	await consumer.run({
		autoCommitInterval: 500,
		eachMessage: async ({ partition, message }) => {
			const value = message.value === null ? null : message.value.toString();
			record({ type: 'ok', f: 'read', partition, offset: Number(message.offset), value, isolation: 'read_committed', group: GROUP });
			reads++;
		},
	});
	await sleep(deadline - Date.now());
	await consumer.disconnect().catch(() => {});
	console.error(`kjs_chaos: ${name}: ${reads} records read, ${commits} partition commits, ${crashes} crashes`);
}

async function main() {
	const deadline = Date.now() + seconds * 1000;
	// A send can retry for a long time against brokers that do not answer: the run
	// does not wait for it past a minute after the end.
	setTimeout(() => {
		console.error(`kjs_chaos: ${name}: still busy 60 s after the end, giving up`);
		process.exit(1);
	}, (seconds + 60) * 1000).unref();
	if (mode === 'group') return group(deadline);
	const parts = await partitionCount();
	if (mode === 'produce') await produce(parts, deadline);
	else await txn(parts, deadline);
}

main().then(
	() => process.exit(0),
	(e) => {
		console.error(`kjs_chaos: ${name}: ${e.stack || e}`);
		process.exit(1);
	}
);
