# framehost with the built-in demo model (or --model, mounted): one process, PID 1, no shell and
# no npm in between, so `docker stop` (SIGTERM) reaches the server itself, which drains and exits 0
# (test/signals.test.ts runs exactly this CMD as an entry process and signals only its pid).
FROM node:20-slim

# Listen on every interface of the container; the port is the one to publish.
ENV NODE_ENV=production FRAMEHOST_HOST=0.0.0.0 FRAMEHOST_PORT=3000

WORKDIR /app
COPY package.json package-lock.json .npmrc ./
# Runtime dependencies only (tsx runs the TypeScript sources: no build step).
RUN npm ci --omit=dev --no-audit --no-fund && npm cache clean --force
COPY tsconfig.json ./
COPY bin ./bin
COPY src ./src

# Not root: the image's own unprivileged user.
USER node
EXPOSE 3000

STOPSIGNAL SIGTERM
# /ready is 200 once the model is loaded and while it can serve (503 while loading, failed or closing).
HEALTHCHECK --interval=10s --timeout=3s --start-period=120s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:' + (process.env.FRAMEHOST_PORT || 3000) + '/ready').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]

CMD ["node", "bin/framehost.mjs", "serve"]
