// Entry of the bundle that runs on a lent GPU machine (bench/device/prepare.sh builds it).
// In a bundle every module shares the bundle's import.meta.url, so cli/theory.ts's "run when this
// file is the script" check would fire for any command: argv[1] is renamed before the CLI loads.
const args = process.argv.slice(2);
process.argv[1] = 'sgilo-device-bundle';
const { main } = await import('../cli/main.ts');
process.exitCode = await main(args);
