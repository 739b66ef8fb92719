/* export.h - marks the functions libtally.so exports. The library is built with
 * -fvisibility=hidden plus a version script (producer/libtally.map); both must agree. */
#ifndef TL_CLIENT_EXPORT_H
#define TL_CLIENT_EXPORT_H

#define TL_EXPORT __attribute__((visibility("default")))

#endif
