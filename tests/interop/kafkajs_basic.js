// kafkajs_basic.js - kafkajs 2.2.4 against tallyd: admin, produce, consume, delete.
//   node tests/interop/kafkajs_basic.js BROKER [STEP...]
// Steps, in this order, all by default:
//   admin    createTopics (3 partitions), listTopics, fetchTopicMetadata
//   produce  send COUNT keyed records with headers (acks=-1), half of them gzip'ed;
//            fetchTopicOffsets must then sum to COUNT
//   consume  a consumer group reads the topic from the beginning; every record must come
//            back byte-exact, once, in per-partition send order
//   delete   deleteTopics, then listTopics must no longer list the topic
// Prints one line per step; exits 0 when every step passed, 1 on the first failure.
// The topic is TOPIC (env, default kafkajs-basic); COUNT (env, default 1000);
// REPLICATION_FACTOR (env, default 1) for createTopics. With SSL_CA (env: a PEM file) it
// connects over TLS, verifying the broker against that CA; SSL_CERT and SSL_KEY add a
// client certificate (mutual TLS).
'use strict';

const { Kafka, logLevel, CompressionTypes } = require('kafkajs');

const broker = process.argv[2];
const steps = process.argv.length > 3 ? process.argv.slice(3) : ['admin', 'produce', 'consume', 'delete'];
const topic = process.env.TOPIC || 'kafkajs-basic';
const count = parseInt(process.env.COUNT || '1000', 10);
const replicationFactor = parseInt(process.env.REPLICATION_FACTOR || '1', 10);
const partitions = 3;

if (!broker) {
	console.error('usage: node kafkajs_basic.js BROKER [admin|produce|consume|delete...]');
	process.exit(2);
}

const fs = require('fs');
const ssl = process.env.SSL_CA ? {
	ca: [fs.readFileSync(process.env.SSL_CA)],
	cert: process.env.SSL_CERT ? fs.readFileSync(process.env.SSL_CERT) : undefined,
	key: process.env.SSL_KEY ? fs.readFileSync(process.env.SSL_KEY) : undefined,
} : undefined;

const kafka = new Kafka({
	clientId: 'tally-kafkajs-basic',
	brokers: [broker],
	ssl,
	logLevel: logLevel.WARN,
	connectionTimeout: 3000,
	requestTimeout: 10000,
	retry: { retries: 3, initialRetryTime: 100 },
});

function check(cond, what) {
	if (!cond)
		throw new Error(what);
}

function recordOf(i) {
	// Values vary in length and hold bytes outside ASCII, so byte-exactness means something.
	const len = 1 + ((i * 7919) % 300);
	const value = Buffer.alloc(len);
	for (let j = 0; j < len; j++)
		value[j] = (i * 31 + j * 17) & 0xff;
	return {
		key: `key-${i % 17}`,
		value,
		headers: { idx: String(i), 'trace-id': Buffer.from([0, 1, 2, i & 0xff]) },
	};
}

async function stepAdmin() {
	const admin = kafka.admin();
	await admin.connect();
	try {
		const created = await admin.createTopics({
			topics: [{ topic, numPartitions: partitions, replicationFactor }],
			waitForLeaders: true,
		});
		check(created === true, `createTopics returned ${created}, want true (new topic)`);
		const again = await admin.createTopics({ topics: [{ topic, numPartitions: partitions }] });
		check(again === false, `second createTopics returned ${again}, want false (exists)`);
		const names = await admin.listTopics();
		check(names.includes(topic), `listTopics ${JSON.stringify(names)} lacks ${topic}`);
		const meta = await admin.fetchTopicMetadata({ topics: [topic] });
		const parts = meta.topics[0].partitions;
		check(parts.length === partitions, `metadata has ${parts.length} partitions, want ${partitions}`);
		for (const p of parts)
			check(p.partitionErrorCode === 0 && p.leader >= 0, `partition ${p.partitionId} not led: ${JSON.stringify(p)}`);
	} finally {
		await admin.disconnect();
	}
}

async function stepProduce() {
	const producer = kafka.producer({ allowAutoTopicCreation: false });
	await producer.connect();
	try {
		const half = Math.floor(count / 2);
		const batch = 100;
		for (let start = 0; start < count; start += batch) {
			const messages = [];
			for (let i = start; i < Math.min(start + batch, count); i++)
				messages.push({ ...recordOf(i), partition: i % partitions });
			const res = await producer.send({
				topic,
				acks: -1,
				compression: start < half ? CompressionTypes.None : CompressionTypes.GZIP,
				messages,
			});
			for (const r of res)
				check(r.errorCode === 0, `produce answered ${JSON.stringify(r)}`);
		}
	} finally {
		await producer.disconnect();
	}
	const admin = kafka.admin();
	await admin.connect();
	try {
		const offsets = await admin.fetchTopicOffsets(topic);
		const total = offsets.reduce((sum, o) => sum + (parseInt(o.high, 10) - parseInt(o.low, 10)), 0);
		check(total === count, `fetchTopicOffsets sums to ${total}, want ${count}: ${JSON.stringify(offsets)}`);
	} finally {
		await admin.disconnect();
	}
}

async function stepConsume() {
	const consumer = kafka.consumer({
		groupId: `${topic}-group`,
		sessionTimeout: 10000,
		rebalanceTimeout: 10000,
		heartbeatInterval: 1000,
		maxWaitTimeInMs: 200,
	});
	const next = new Array(partitions).fill(0); // next index expected, per partition
	let seen = 0;
	let failure = null;
	await consumer.connect();
	try {
		await consumer.subscribe({ topics: [topic], fromBeginning: true });
		const done = new Promise((resolve, reject) => {
			const timer = setTimeout(() => reject(new Error(`consumed ${seen} of ${count} records in 30 s`)), 30000);
			consumer.run({
				autoCommit: true,
				eachMessage: async ({ partition, message }) => {
					try {
						const i = parseInt(message.headers.idx.toString(), 10);
						const want = recordOf(i);
						check(i % partitions === partition, `record ${i} on partition ${partition}`);
						check(i === next[partition] * partitions + partition,
						      `partition ${partition} offset ${message.offset}: record ${i}, want ${next[partition] * partitions + partition}`);
						check(message.key.toString() === want.key, `record ${i}: key ${message.key}`);
						check(Buffer.compare(message.value, want.value) === 0, `record ${i}: value differs`);
						check(Buffer.compare(message.headers['trace-id'], want.headers['trace-id']) === 0,
						      `record ${i}: header trace-id differs`);
						check(parseInt(message.offset, 10) === next[partition],
						      `partition ${partition}: offset ${message.offset}, want ${next[partition]}`);
						next[partition]++;
						seen++;
					} catch (e) {
						failure = failure || e;
					}
					if (failure) {
						clearTimeout(timer);
						reject(failure);
					} else if (seen === count) {
						clearTimeout(timer);
						resolve();
					}
				},
			});
		});
		await done;
	} finally {
		await consumer.disconnect();
	}
	// The group committed its offsets: they must equal each partition's end.
	const admin = kafka.admin();
	await admin.connect();
	try {
		const committed = await admin.fetchOffsets({ groupId: `${topic}-group`, topics: [topic] });
		for (const p of committed[0].partitions) {
			const want = Math.floor(count / partitions) + (p.partition < count % partitions ? 1 : 0);
			check(parseInt(p.offset, 10) === want, `committed offset of partition ${p.partition} is ${p.offset}, want ${want}`);
		}
	} finally {
		await admin.disconnect();
	}
}

async function stepDelete() {
	const admin = kafka.admin();
	await admin.connect();
	try {
		await admin.deleteTopics({ topics: [topic], timeout: 5000 });
		const names = await admin.listTopics();
		check(!names.includes(topic), `listTopics still lists ${topic} after deleteTopics`);
	} finally {
		await admin.disconnect();
	}
}

const impl = { admin: stepAdmin, produce: stepProduce, consume: stepConsume, delete: stepDelete };

(async () => {
	for (const step of steps) {
		check(impl[step], `unknown step ${step}`);
		const start = Date.now();
		await impl[step]();
		console.log(`kafkajs ${step}: ok (${Date.now() - start} ms)`);
	}
})().then(
	() => process.exit(0),
	(e) => {
		console.error(`kafkajs: FAILED: ${e && e.stack ? e.stack : e}`);
		process.exit(1);
	}
);
