// kafkajs_admin.js - kafkajs 2.2.4's admin against tallyd, and what consumers see after:
//   node tests/interop/kafkajs_admin.js BROKER TOPIC [BROKERS]
// BROKERS (default 1): a cluster of that many brokers (BROKER a comma-separated list):
// the topic is created with that replication factor, and what one broker changed is
// waited for on the others (each applies the metadata store's change when its view has it).
// createPartitions 1 -> 3, then a producer with keys spreads records over all three and
// a consumer reads from each; alterConfigs sets retention.ms and describeConfigs shows it
// as DYNAMIC_TOPIC_CONFIG (source 1); deleteTopicRecords moves partition 0's start to 5,
// after which fetchTopicOffsets reports low 5 and a consumer from the beginning gets
// offset 5 first; describeCluster names every broker, the controller one of them. Exits 0
// on success.
'use strict';

const { Kafka, logLevel, ConfigResourceTypes } = require('kafkajs');

const [broker, topic, brokersArg] = process.argv.slice(2);
const brokers = Number(brokersArg || 1);
const kafka = new Kafka({ clientId: 'tally-admin', brokers: broker.split(','), logLevel: logLevel.WARN });

function check(cond, what) {
	if (!cond) throw new Error(what);
}

// Calls @get until @ok(its result) holds, up to 10 s; returns the last result.
async function until(get, ok) {
	const deadline = Date.now() + 10000;
	for (;;) {
		const got = await get();
		if (ok(got) || Date.now() >= deadline) return got;
		await new Promise((resolve) => setTimeout(resolve, 200));
	}
}

async function consumeAll(groupId, want) {
	const consumer = kafka.consumer({ groupId, maxWaitTimeInMs: 100 });
	await consumer.connect();
	await consumer.subscribe({ topic, fromBeginning: true });
	const seen = [];
	await new Promise((resolve, reject) => {
		const timer = setTimeout(() => reject(new Error(`consumed ${seen.length} of ${want} records`)), 30000);
		consumer
			.run({
				eachMessage: async ({ partition, message }) => {
					seen.push({ partition, offset: Number(message.offset) });
					if (seen.length === want) {
						clearTimeout(timer);
						resolve();
					}
				},
			})
			.catch(reject);
	});
	await consumer.disconnect();
	return seen;
}

async function main() {
	const admin = kafka.admin();
	await admin.connect();
	const spec = brokers > 1 ? { topic, numPartitions: 1, replicationFactor: brokers } : { topic, numPartitions: 1 };
	await admin.createTopics({ topics: [spec], waitForLeaders: true });
	await admin.createPartitions({ topicPartitions: [{ topic, count: 3 }] });
	const [meta] = (
		await until(
			() => admin.fetchTopicMetadata({ topics: [topic] }),
			(m) => m.topics[0].partitions.length === 3 && m.topics[0].partitions.every((p) => p.leader >= 0)
		)
	).topics;
	check(meta.partitions.length === 3, `after createPartitions: ${meta.partitions.length} partitions`);

	const producer = kafka.producer();
	await producer.connect();
	const messages = [];
	for (let i = 0; i < 60; i++) messages.push({ key: `k${i}`, value: `v${i}` });
	await producer.send({ topic, acks: -1, messages });
	await producer.disconnect();
	const seen = await consumeAll('tally-admin-1', 60);
	const partitions = new Set(seen.map((r) => r.partition));
	check(partitions.size === 3, `records went to partitions ${[...partitions]}, want 0, 1 and 2`);

	await admin.alterConfigs({
		validateOnly: false,
		resources: [{ type: ConfigResourceTypes.TOPIC, name: topic, configEntries: [{ name: 'retention.ms', value: '86400000' }] }],
	});
	const described = await until(
		() =>
			admin.describeConfigs({
				includeSynonyms: false,
				resources: [{ type: ConfigResourceTypes.TOPIC, name: topic, configNames: ['retention.ms'] }],
			}),
		(d) => d.resources[0].configEntries[0].configValue === '86400000'
	);
	const entry = described.resources[0].configEntries[0];
	check(entry.configValue === '86400000' && entry.configSource === 1,
		`retention.ms after alterConfigs: ${JSON.stringify(entry)}`);

	const before = seen.filter((r) => r.partition === 0).length;
	check(before > 5, `partition 0 has ${before} records, want more than 5`);
	await admin.deleteTopicRecords({ topic, partitions: [{ partition: 0, offset: '5' }] });
	const offsets = await admin.fetchTopicOffsets(topic);
	const p0 = offsets.find((o) => o.partition === 0);
	check(p0.low === '5', `partition 0 low after deleteTopicRecords: ${p0.low}, want 5`);
	const again = await consumeAll('tally-admin-2', 60 - 5);
	const first0 = Math.min(...again.filter((r) => r.partition === 0).map((r) => r.offset));
	check(first0 === 5, `a new consumer's first offset of partition 0 is ${first0}, want 5`);

	const cluster = await admin.describeCluster();
	check(cluster.brokers.length === brokers && cluster.brokers.some((b) => b.nodeId === cluster.controller),
		`describeCluster: ${JSON.stringify(cluster)}`);
	await admin.disconnect();
	console.log('kafkajs admin: createPartitions, alterConfigs, deleteTopicRecords, describeCluster ok');
}

main().then(
	() => process.exit(0),
	(e) => {
		console.error(`kafkajs_admin: ${e.stack || e}`);
		process.exit(1);
	}
);
