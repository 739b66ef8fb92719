// kafkajs_group.js - a kafkajs 2.2.4 consumer group against tallyd: join, commit, resume.
//   node tests/interop/kafkajs_group.js BROKER TOPIC GROUP COUNT HALF
// TOPIC must hold COUNT records (values unique). Steps:
//   1. a consumer in GROUP reads from the beginning, handles the first HALF records it
//      gets, commits exactly those (commitOffsets, autoCommit off) and disconnects;
//   2. admin.fetchOffsets must return those offsets;
//   3. admin.describeGroups shows GROUP Empty;
//   4. a second consumer in GROUP must get exactly the other COUNT - HALF records.
// Prints one line per step; exits 0 when all passed, 1 on the first failure.
'use strict';

const { Kafka, logLevel } = require('kafkajs');

const [broker, topic, groupId, countArg, halfArg] = process.argv.slice(2);
const count = parseInt(countArg, 10);
const half = parseInt(halfArg, 10);
if (!broker || !topic || !groupId || !(count > 0) || !(half > 0 && half < count)) {
	console.error('usage: node kafkajs_group.js BROKER TOPIC GROUP COUNT HALF');
	process.exit(2);
}

const kafka = new Kafka({
	clientId: 'tally-kafkajs-group',
	brokers: [broker],
	logLevel: logLevel.WARN,
	connectionTimeout: 3000,
	requestTimeout: 10000,
	retry: { retries: 5, initialRetryTime: 100 },
});

function check(cond, what) {
	if (!cond)
		throw new Error(what);
}

// Runs a consumer of the group until @want records were handled (or 30 s passed);
// returns { values, next } where next maps partition -> offset after the last handled.
async function consumeSome(want, commit) {
	const consumer = kafka.consumer({ groupId, sessionTimeout: 10000, heartbeatInterval: 1000 });
	await consumer.connect();
	await consumer.subscribe({ topics: [topic], fromBeginning: true });
	const values = [];
	const next = {};
	let resolveDone;
	const done = new Promise((resolve) => { resolveDone = resolve; });
	await consumer.run({
		autoCommit: false,
		eachMessage: async ({ partition, message }) => {
			if (values.length >= want)
				return;
			values.push(message.value.toString());
			next[partition] = (BigInt(message.offset) + 1n).toString();
			if (values.length === want)
				resolveDone();
		},
	});
	const timer = setTimeout(resolveDone, 30000);
	await done;
	clearTimeout(timer);
	if (commit) {
		const offsets = Object.entries(next).map(([p, offset]) => ({ topic, partition: Number(p), offset }));
		await consumer.commitOffsets(offsets);
	}
	await consumer.disconnect();
	return { values, next };
}

async function main() {
	const first = await consumeSome(half, true);
	check(first.values.length === half, `first consumer got ${first.values.length} records, want ${half}`);
	console.log(`join+commit ok: ${half} records, committed ${JSON.stringify(first.next)}`);

	const admin = kafka.admin();
	await admin.connect();
	const fetched = await admin.fetchOffsets({ groupId, topics: [topic] });
	for (const p of fetched[0].partitions) {
		const want = first.next[p.partition] !== undefined ? first.next[p.partition] : '-1';
		check(p.offset === want, `fetchOffsets partition ${p.partition}: ${p.offset}, want ${want}`);
	}
	console.log('fetchOffsets ok');
	const described = await admin.describeGroups([groupId]);
	const g = described.groups[0];
	check(g.groupId === groupId && g.state === 'Empty', `describeGroups: ${JSON.stringify(g)}`);
	console.log('describeGroups ok: Empty');
	await admin.disconnect();

	const second = await consumeSome(count - half, false);
	check(second.values.length === count - half,
		`second consumer got ${second.values.length} records, want ${count - half}`);
	const all = new Set([...first.values, ...second.values]);
	check(all.size === count, `the two consumers read ${all.size} distinct records, want ${count}`);
	console.log(`resume ok: ${second.values.length} more records, none twice`);
}

main().then(() => process.exit(0), (err) => {
	console.error(`kafkajs_group: ${err.stack || err}`);
	process.exit(1);
});
