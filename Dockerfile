# mqtt-kafka-bridge: build the TypeScript, then ship dist/ with production dependencies only.
FROM node:24-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
RUN npm run build && npm prune --omit=dev

FROM node:24-bookworm-slim
ENV NODE_ENV=production
# health and metrics for the orchestrator and Prometheus outside the container; MQTT stays closed
# to anonymous clients from the network unless BRIDGE_AUTH_FILE or BRIDGE_AUTH_ALLOW_ANONYMOUS
ENV BRIDGE_HTTP_HOST=0.0.0.0
WORKDIR /app
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY package.json ./
COPY mappings ./mappings
USER node
# MQTT over TCP, MQTT over WebSocket, HTTP (health, metrics)
EXPOSE 1883 8083 8883 8084 9080
HEALTHCHECK --interval=10s --timeout=3s \
  CMD ["node", "-e", "fetch('http://127.0.0.1:9080/health/ready').then(r => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
ENTRYPOINT ["node", "dist/cli.js"]
CMD ["start"]
