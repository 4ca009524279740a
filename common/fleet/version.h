/* version.h — the release of llmfleet: `llmfleet --version`, the
 * worker_start log line. Bumped by a release commit (semver: the job and
 * result formats and the key schema are the public interface). */
#ifndef LLMFLEET_VERSION_H
#define LLMFLEET_VERSION_H

#define LLMFLEET_VERSION "0.9.0"

#endif
