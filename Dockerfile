# One image for the api, worker, charging and migrate services (docker-compose.yml picks the command).
FROM node:20-bookworm-slim
WORKDIR /app
ENV NODE_ENV=production
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --ignore-scripts && npm cache clean --force
COPY . .
# Workers load this prebuilt bundle instead of running webpack at start.
RUN npx tsx scripts/bundle-workflows.ts dist/workflow-bundle.js
ENV WORKFLOW_BUNDLE_PATH=/app/dist/workflow-bundle.js
# The worker's watched folder of MNO files (a volume in docker-compose.yml), writable by the app user.
RUN mkdir -p /var/lib/mvno-bss/reconciliation-inbox && chown -R node:node /var/lib/mvno-bss
USER node
EXPOSE 4000 4100
CMD ["npx", "tsx", "api/server.ts"]
