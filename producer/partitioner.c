/* partitioner.c - Kafka's murmur2 and the Java client's keyed partition choice.
 * Must match org.apache.kafka.common.utils.Utils.murmur2 bit for bit: the same key has
 * to land on the same partition whichever client (Java, librdkafka with
 * partitioner=murmur2_random, libtally) produced it. */
#include "client/client.h"
#include "common/assert.h"
#include "tally/producer.h"

TL_EXPORT int32_t tl_producer_murmur2(const void *data, int32_t len)
{
	const uint8_t *p = data;
	const uint32_t m = 0x5bd1e995;
	const int r = 24;
	uint32_t h = 0x9747b28cu ^ (uint32_t)len;
	int32_t len4 = len / 4;
	for (int32_t i = 0; i < len4; i++) {
		const uint8_t *q = p + i * 4;
		uint32_t k = (uint32_t)q[0] | (uint32_t)q[1] << 8 | (uint32_t)q[2] << 16 |
			     (uint32_t)q[3] << 24;
		k *= m;
		k ^= k >> r;
		k *= m;
		h *= m;
		h ^= k;
	}
	const uint8_t *tail = p + (len & ~3);
	switch (len % 4) {
	case 3:
		h ^= (uint32_t)tail[2] << 16;
		/* fall through */
	case 2:
		h ^= (uint32_t)tail[1] << 8;
		/* fall through */
	case 1:
		h ^= tail[0];
		h *= m;
		break;
	default:
		break;
	}
	h ^= h >> 13;
	h *= m;
	h ^= h >> 15;
	return (int32_t)h;
}

TL_EXPORT int32_t tl_producer_partition_for_key(const void *key, int32_t key_len,
						int32_t partition_count)
{
	TL_ASSERT(partition_count > 0);
	TL_ASSERT(key_len >= 0);
	/* Utils.toPositive: clear the sign bit (not abs()). */
	int32_t positive = tl_producer_murmur2(key, key_len) & 0x7fffffff;
	return positive % partition_count;
}
