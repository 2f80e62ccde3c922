import winston from "winston";

/** Structured JSON logs (one object per line) so log pipelines can filter by policy and reconcile id. */
export type Logger = winston.Logger;

export function createLogger(level: string = process.env["LOG_LEVEL"] ?? "info"): Logger {
  return winston.createLogger({
    level,
    format: winston.format.combine(
      winston.format.timestamp(),
      winston.format.errors({ stack: true }),
      winston.format.json(),
    ),
    defaultMeta: { component: "csp-operator" },
    transports: [new winston.transports.Console({ stderrLevels: ["error", "warn"] })],
  });
}

/** A logger that drops everything, for unit tests of code that logs. */
export function silentLogger(): Logger {
  return winston.createLogger({
    silent: true,
    transports: [new winston.transports.Console({ silent: true })],
  });
}
