/* check_run.h - the end of every unit test binary's main(): runs @suite and exits 0 only
 * if every test in it passed. Header-only, for one test file. */
#ifndef TL_COMMON_TESTS_CHECK_RUN_H
#define TL_COMMON_TESTS_CHECK_RUN_H

#include <stdlib.h>

#include <check.h>

static inline int tl_check_run(Suite *suite)
{
	SRunner *runner = srunner_create(suite);
	srunner_run_all(runner, CK_NORMAL);
	int failed = srunner_ntests_failed(runner);
	srunner_free(runner);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}

#endif
