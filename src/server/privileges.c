/*
 * privileges.c: dropping root (chorusd --user). Apart from server.h, whose
 * struct group would meet <grp.h>'s.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/util.h"

int become_user(const char *name, const char *data_dir);

/* Gives the directory dir and the entries right inside it to uid:gid,
 * symbolic links themselves and not what they point to: a data directory
 * written by root (before, or at this start) is the user's from now on.
 * Returns 0, or -1 logged. */
static int give_dir(const char *dir, uid_t uid, gid_t gid)
{
	DIR *d;
	struct dirent *e;
	if (!(d = opendir(dir)) || fchown(dirfd(d), uid, gid) < 0) {
		log_error("data directory %s: %s", dir, strerror(errno));
		if (d)
			closedir(d);
		return -1;
	}
	while ((e = readdir(d)))
		if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0 &&
		    fchownat(dirfd(d), e->d_name, uid, gid, AT_SYMLINK_NOFOLLOW) < 0)
			log_warn("data directory %s: cannot give %s to the user: %s", dir, e->d_name,
				 strerror(errno));
	closedir(d);
	return 0;
}

/* Runs as user name (its uid, primary group, no other groups) from now on,
 * and gives it the data directory. Called once the store, the listeners and
 * the control socket are open (their parents need not be open to the user)
 * and before any client is served: what a client can make chorusd do runs
 * without root. Started as that user already, nothing changes. Returns 0, or
 * -1 with the reason logged. */
int become_user(const char *name, const char *data_dir)
{
	errno = 0;
	struct passwd *pw = getpwnam(name);
	if (!pw) {
		log_error("--user %s: %s", name, errno ? strerror(errno) : "no such user");
		return -1;
	}
	if (geteuid() == pw->pw_uid)
		return 0;
	if (geteuid() != 0) {
		log_error("--user %s: only root can change user (started as uid %ld)", name, (long)geteuid());
		return -1;
	}
	if (give_dir(data_dir, pw->pw_uid, pw->pw_gid) < 0)
		return -1;
	if (setgroups(0, NULL) < 0 || setgid(pw->pw_gid) < 0 || setuid(pw->pw_uid) < 0) {
		log_error("--user %s: %s", name, strerror(errno));
		return -1;
	}
	if (setuid(0) == 0) {
		log_error("--user %s: root privileges could be taken back; refusing to run", name);
		return -1;
	}
	log_info("running as user %s (uid %ld, gid %ld)", name, (long)pw->pw_uid, (long)pw->pw_gid);
	return 0;
}
