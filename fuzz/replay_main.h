/* replay_main.h — the corpus replay of a fuzz harness built without libFuzzer (-DNW_FUZZ_REPLAY_MAIN):
 * a plain program that runs LLVMFuzzerTestOneInput once on each file named on the command line
 * (a directory: each file in it). Included at the end of a harness, after
 * LLVMFuzzerTestOneInput, with FUZZ_REPLAY_NAME defined (the first word of its summary line). */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>

static int run_file(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) { perror(path); return 1; }
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *buf = malloc(n > 0 ? (size_t)n : 1);
    size_t got = fread(buf, 1, (size_t)(n > 0 ? n : 0), f);
    fclose(f);
    LLVMFuzzerTestOneInput(buf, got);
    free(buf);
    return 0;
}

int main(int argc, char **argv) {
    int files = 0, errors = 0;
    for (int i = 1; i < argc; i++) {
        struct stat sb;
        if (stat(argv[i], &sb) != 0) { perror(argv[i]); errors++; continue; }
        if (S_ISDIR(sb.st_mode)) {
            DIR *d = opendir(argv[i]);
            struct dirent *e;
            while (d && (e = readdir(d)) != NULL) {
                if (e->d_name[0] == '.') continue;
                char p[4096];
                snprintf(p, sizeof p, "%s/%s", argv[i], e->d_name);
                errors += run_file(p);
                files++;
            }
            if (d) closedir(d);
        } else {
            errors += run_file(argv[i]);
            files++;
        }
    }
    printf("%s replay: %d inputs, %d unreadable, 0 crashes\n", FUZZ_REPLAY_NAME, files, errors);
    return errors ? 1 : 0;
}
