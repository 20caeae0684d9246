// Entry of the bundle that runs on a lent GPU machine (bench/device/prepare.sh builds it).
import { main } from '../cli/main.ts';
process.exitCode = await main(process.argv.slice(2));
